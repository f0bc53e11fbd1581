"""Explanation quality: the fast signal that prompt variants are iterated on.

Two measurements:

* ``text_quality`` reads an explanation table against the catalogue. Per side (positive,
  negative): how many sentences are distinct, the share of the most frequent one, and how often a
  sentence names an attribute of the candidate or of the history (a category, or a title word of
  at least four letters that is not a stopword). The "attributes" prompt seeds every answer with
  catalogue attributes, so the same two shares are also measured on the model-written
  continuation alone (the sentence with its seed removed).
* ``residual_probe`` trains the no-explanation twin (``lr-recsys-noexp``, the ablation) and asks
  whether a linear probe on the explanation embeddings predicts what the twin gets wrong on
  held-out pairs, with a paired bootstrap interval and a permuted-embedding control.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lr_recsys import schema
from lr_recsys.config import ModelConfig, TrainConfig
from lr_recsys.data.prepare import Prepared
from lr_recsys.evaluate import auc, predict_all
from lr_recsys.explain.engine import FLAGS
from lr_recsys.explain.normalize import FAILED, RETRIED
from lr_recsys.explain.prompts import (
    Domain,
    ItemAttributes,
    Kind,
    Variant,
    answer_prefix,
    attribute_seed,
    get_domain,
    get_variant,
)
from lr_recsys.features import to_tensors
from lr_recsys.train.experiment import build_experiment_data, fit_model

GOAL_DISTINCT = 0.5  # each side: at least half of the sentences distinct
GOAL_TOP_SHARE = 0.05  # each side: no sentence used for more than 5% of the pairs
GOAL_NAMES_CANDIDATE = 0.7  # both sides together: 70% of the sentences name the candidate
MIN_TITLE_WORD = 4  # title words shorter than this ("Ran", "Big", "Day") are too common
PLACEHOLDER_CATEGORIES = frozenset({"unknown", "(no genres listed)"})  # MovieLens fillers
# Words of at least MIN_TITLE_WORD letters that say nothing about an item (with the praise an
# explanation uses for anything: "a good movie" does not name "Good Morning").
_STOPWORDS = (
    "about after again against also back been before being below best better between both "
    "could does doing down during each even ever every film films from further good great have "
    "having here into just like made make many more most movie movies much must never only "
    "other over part same should some such than that their them then there these they this "
    "those through under until very were what when where which while will with would your"
)
STOPWORDS = frozenset(_STOPWORDS.split())
TWIN = "lr-recsys-noexp"
RIDGE_ALPHAS = np.logspace(-3, 3, 13)
_EPS = 1e-6
_WORD = re.compile(r"[^\W\d_]+")  # a run of letters


# -- text quality -------------------------------------------------------------------------------
def text_quality(
    table: pd.DataFrame, prepared: Prepared, variant: str = "attributes", domain: str = "movie"
) -> dict[str, Any]:
    """Distinctness and specificity of the explanations in ``table``.

    Args:
        table: Explanation table (``pair_key, positive, negative`` and optionally ``flags``).
        prepared: The prepared data the pairs come from (histories, candidates, catalogue).
        variant: Prompt variant that wrote the table (decides what the seed/prefix is).
        domain: Domain of the prompts (``movie``, ...).

    Returns:
        ``pairs`` (distinct keys in the table), ``unknown_pairs`` (not in ``prepared``; left out
        of the per-side numbers), ``duplicate_keys``, ``flagged`` (retried) and ``failed`` pairs,
        one dict per side (see ``_side_quality``), ``names_candidate`` over both sides and
        ``goals`` (booleans).

    Raises:
        ValueError: if the table is empty or lacks a required column.
    """
    v, d = get_variant(variant), get_domain(domain)
    sides = _side_kinds(v)
    table, duplicates = _checked_table(table, sides)
    keys = set(prepared.examples[schema.PAIR_KEY])
    known = table[table[schema.PAIR_KEY].isin(keys)]
    pairs = known.merge(
        prepared.examples[[schema.PAIR_KEY, schema.HISTORY, schema.ITEM_ID]].drop_duplicates(
            schema.PAIR_KEY
        ),
        on=schema.PAIR_KEY,
        how="left",
    )
    terms = _ItemTerms(prepared.items, d)
    report: dict[str, Any] = {
        "variant": v.name,
        "domain": d.name,
        "pairs": len(table),
        "unknown_pairs": len(table) - len(known),
        "duplicate_keys": duplicates,
        "flagged": int(table[FLAGS].str.contains(RETRIED).sum()),
        "failed": int(table[FLAGS].str.contains(FAILED).sum()),
    }
    for column, kind in sides.items():
        report[column] = _side_quality(pairs, column, kind, terms, v, d)
    report["names_candidate"] = _pooled(report, list(sides), "names_candidate")
    report["goals"] = _goals(report, list(sides))
    return report


def _side_kinds(v: Variant) -> dict[str, Kind]:
    """Table column -> the kind of answer it holds under variant ``v``."""
    if v.style in ("summary", "rating"):
        return {schema.POSITIVE: v.style}  # type: ignore[dict-item]
    sides: dict[str, Kind] = {schema.POSITIVE: "positive"}
    if v.negative:
        sides[schema.NEGATIVE] = "negative"
    return sides


def _checked_table(table: pd.DataFrame, sides: dict[str, Kind]) -> tuple[pd.DataFrame, int]:
    """Required columns present, texts and flags as strings, one row per pair key (the first);
    returns the table and how many duplicate rows were dropped."""
    if table is None or len(table) == 0:
        raise ValueError("explanation table is empty: nothing to measure")
    missing = [c for c in (schema.PAIR_KEY, *sides) if c not in table.columns]
    if missing:
        raise ValueError(
            f"explanation table lacks column(s) {missing}; found {list(table.columns)}"
        )
    out = table.copy()
    for col in (*sides, FLAGS):
        out[col] = out[col].fillna("").astype(str) if col in out.columns else ""
    out[schema.PAIR_KEY] = out[schema.PAIR_KEY].astype(str)
    deduped = out.drop_duplicates(schema.PAIR_KEY).reset_index(drop=True)
    return deduped, len(out) - len(deduped)


def _normal(text: str) -> str:
    """NFKC, typographic apostrophes as ``'``, single spaces."""
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(text.split())


def _category_pattern(category: str) -> str:
    """Regex of a category as a whole word/phrase, case-insensitive: also its plural ("dramas",
    "comedies") and with a hyphen written as a space or left out ("film noir", "scifi")."""
    c = re.escape(_normal(category).lower())
    c = f"{c[:-1]}(?:y|ies)" if c.endswith("y") else f"{c}(?:e?s)?"
    return c.replace(r"\-", r"[-\s]?")


def title_words(title: str) -> list[str]:
    """Distinctive words of a title: at least ``MIN_TITLE_WORD`` letters, not a stopword."""
    words = _WORD.findall(_normal(title))
    return [w for w in words if len(w) >= MIN_TITLE_WORD and w.lower() not in STOPWORDS]


def template_words(d: Domain) -> set[str]:
    """Lower-cased words every seeded answer of domain ``d`` contains whatever the item ("movie",
    "watched", "because", "usually", ...): a title word among them names nothing."""
    blank, plain = ItemAttributes(""), get_variant("no_profile")
    texts = [attribute_seed(k, [], blank, d) for k in ("positive", "negative")]
    texts += [answer_prefix(k, d, plain) for k in ("positive", "negative")]
    return {w.lower() for t in texts for w in _WORD.findall(t)} | {f"{d.item_noun}s".lower()}


def attribute_pattern(
    attrs: ItemAttributes, exclude: Collection[str] = frozenset()
) -> re.Pattern[str] | None:
    """What naming an item means, as one case-insensitive whole-word regex: any of its
    categories (placeholders such as "unknown" left out) or of its distinctive title words
    (``exclude``: lower-cased words that do not count). None when there is nothing to name."""
    cats = [c for c in attrs.categories if c.strip().lower() not in PLACEHOLDER_CATEGORIES]
    words = dict.fromkeys(w.lower() for w in title_words(attrs.title))
    terms = [_category_pattern(c) for c in cats] + [re.escape(w) for w in words if w not in exclude]
    return re.compile(rf"(?<!\w)(?:{'|'.join(terms)})(?!\w)", re.IGNORECASE) if terms else None


class _ItemTerms:
    """Per item of the catalogue: its attributes and a compiled "names it" pattern (lazily)."""

    def __init__(self, items: pd.DataFrame, d: Domain) -> None:
        from lr_recsys.explain.run import catalogue

        self.attrs = catalogue(items)[1]  # the attributes the prompts were built from
        self._template_words = template_words(d)
        self._patterns: dict[str, re.Pattern[str] | None] = {}

    def get(self, item_id: str) -> ItemAttributes:
        """Attributes of ``item_id``; an item missing from the catalogue is named by its id."""
        return self.attrs.get(item_id) or ItemAttributes(item_id)

    def pattern(self, item_id: str) -> re.Pattern[str] | None:
        """Compiled pattern matching any attribute of ``item_id`` (None: nothing to name)."""
        if item_id not in self._patterns:
            self._patterns[item_id] = attribute_pattern(self.get(item_id), self._template_words)
        return self._patterns[item_id]

    def names(self, text: str, item_ids: Sequence[str]) -> bool:
        """Whether ``text`` (normalised, see ``_normal``) names an attribute of any of
        ``item_ids``."""
        return any((p := self.pattern(i)) is not None and p.search(text) for i in item_ids)


def _history_ids(history: Any) -> list[str]:
    if not isinstance(history, list | tuple | np.ndarray):
        return []
    return [str(h) for h in history if str(h) != schema.PAD_ITEM]


def _seed(
    kind: Kind, history: list[str], item_id: str, terms: _ItemTerms, v: Variant, d: Domain
) -> str:
    """The text the answer was seeded with (the prompt's answer prefix)."""
    if v.style == "attributes" and kind in ("positive", "negative"):
        return attribute_seed(kind, [terms.get(h) for h in history], terms.get(item_id), d)
    return answer_prefix(kind, d, v)


def continuation(sentence: str, seed: str) -> tuple[str, bool]:
    """The model-written part of ``sentence``: the words it shares with ``seed`` from its start
    are removed, as is the final punctuation. Returns it and whether the whole seed was found."""
    words = sentence.strip().rstrip(".!?").split()
    seed_words = seed.split()
    shared = 0
    while shared < min(len(words), len(seed_words)) and words[shared] == seed_words[shared]:
        shared += 1
    return " ".join(words[shared:]), shared == len(seed_words)


def _side_quality(
    pairs: pd.DataFrame, column: str, kind: Kind, terms: _ItemTerms, v: Variant, d: Domain
) -> dict[str, Any]:
    """One side's numbers: ``n``, ``distinct_ratio``, ``top_share``, ``top_sentence``,
    ``names_candidate``, ``names_history``, ``continuation_names_candidate``,
    ``continuation_names_history``, ``distinct_continuations`` and ``seed_mismatch`` (sentences
    that do not start with the seed the variant implies: a wrong ``variant`` or catalogue)."""
    sentences = pairs[column].map(_normal).tolist()
    n = len(sentences)
    counts = Counter(sentences)
    top_sentence, top_count = counts.most_common(1)[0] if counts else ("", 0)
    cand_hits = hist_hits = cont_cand = cont_hist = mismatch = 0
    conts = []
    for text, history, item in zip(
        sentences, pairs[schema.HISTORY], pairs[schema.ITEM_ID], strict=True
    ):
        hist = _history_ids(history)
        cont, whole = continuation(text, _normal(_seed(kind, hist, str(item), terms, v, d)))
        conts.append(cont)
        mismatch += not whole
        cand_hits += terms.names(text, [str(item)])
        hist_hits += terms.names(text, hist)
        cont_cand += terms.names(cont, [str(item)])
        cont_hist += terms.names(cont, hist)
    return {
        "n": n,
        "distinct_ratio": _share(len(counts), n),
        "top_share": _share(top_count, n),
        "top_sentence": top_sentence,
        "names_candidate": _share(cand_hits, n),
        "names_history": _share(hist_hits, n),
        "continuation_names_candidate": _share(cont_cand, n),
        "continuation_names_history": _share(cont_hist, n),
        "distinct_continuations": _share(len(set(conts)), n),
        "seed_mismatch": mismatch,
    }


def _share(k: int, n: int) -> float:
    return k / n if n else float("nan")


def _pooled(report: dict[str, Any], sides: list[str], metric: str) -> float:
    """``metric`` over the sentences of all ``sides`` together."""
    n = sum(report[s]["n"] for s in sides)
    hits = sum(report[s][metric] * report[s]["n"] for s in sides if report[s]["n"])
    return _share(hits, n)


def _goals(report: dict[str, Any], sides: list[str]) -> dict[str, bool]:
    goals = {}
    for s in sides:
        goals[f"{s}_distinct"] = bool(report[s]["distinct_ratio"] >= GOAL_DISTINCT)
        goals[f"{s}_top_share"] = bool(report[s]["top_share"] <= GOAL_TOP_SHARE)
    goals["names_candidate"] = bool(report["names_candidate"] >= GOAL_NAMES_CANDIDATE)
    return goals


# -- residual probe -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Settings:
    """How a probe is fitted and scored."""

    folds: int
    n_boot: int
    seed: int
    span: float  # rating_max - rating_min


def residual_probe(
    prepared: Prepared,
    vectors: pd.DataFrame,
    task: str = schema.REGRESSION,
    model_cfg: ModelConfig | None = None,
    train_cfg: TrainConfig | None = None,
    seed: int = 0,
    folds: int = 5,
    n_boot: int = 1000,
    split: str = schema.SPLIT_VAL,
) -> dict[str, Any]:
    """How much the explanation embeddings predict the no-explanation twin's error.

    The twin (``lr-recsys-noexp``) is trained on the training split (its checkpoint chosen on
    validation, as every model is); a probe is then fitted out-of-fold on the ``split`` pairs that
    have vectors. Regression: ridge on ``[pos, neg]`` predicts the residual ``target - twin``.
    Classification: logistic regression on ``[twin logit, pos, neg]`` against one on the logit
    alone. The same probe on row-permuted embeddings is reported as ``baseline_probe``.

    Args:
        prepared: Prepared examples.
        vectors: ``pos_emb`` / ``neg_emb`` arrays indexed by ``pair_key``.
        task: ``regression`` or ``classification``.
        model_cfg: Twin hyperparameters (default ``ModelConfig()``).
        train_cfg: Twin optimisation (default ``TrainConfig(seed=seed)``).
        seed: Seed of the folds, the permutation and the bootstrap.
        folds: Cross-validation folds of the probe.
        n_boot: Bootstrap resamples of the paired lift.
        split: Pairs to probe on; never ``test``.

    Returns:
        ``n``, the twin's and the probe's metric, ``lift`` (> 0: the embeddings help),
        ``lift_ci95`` and ``baseline_probe``; or ``{"n", "skipped"}`` when too few pairs.

    Raises:
        ValueError: on ``split="test"``, an unknown task or split, or malformed vectors.
    """
    _check_probe_args(task, split, folds, n_boot)
    rows, x = _probe_rows(prepared, vectors, split)
    need = max(20, 4 * folds)
    if len(rows) < need:
        return {"n": len(rows), "skipped": f"{len(rows)} {split} pairs have vectors; need {need}"}
    labels = rows[schema.LABEL].to_numpy()
    if task == schema.CLASSIFICATION and min(labels.sum(), len(labels) - labels.sum()) < folds:
        return {"n": len(rows), "skipped": f"fewer than {folds} pairs of one class"}
    pred = _twin_predictions(prepared, rows, task, model_cfg, train_cfg or TrainConfig(seed=seed))
    probe = _regression_probe if task == schema.REGRESSION else _classification_probe
    how = _Settings(folds, n_boot, seed, prepared.config.rating_max - prepared.config.rating_min)
    shuffled = x[np.random.default_rng(seed).permutation(len(x))]
    return {
        "task": task,
        "split": split,
        "n": len(rows),
        **probe(rows, pred, x, how),
        "baseline_probe": probe(rows, pred, shuffled, how),
    }


def _check_probe_args(task: str, split: str, folds: int, n_boot: int) -> None:
    if split == schema.SPLIT_TEST:
        raise ValueError("residual_probe must not read the test split; use split='val' or 'train'")
    if split not in schema.SPLITS:
        raise ValueError(f"unknown split {split!r}; expected 'val' or 'train'")
    if task not in schema.TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {schema.TASKS}")
    if folds < 2 or n_boot < 1:
        raise ValueError(f"need folds >= 2 and n_boot >= 1, got folds={folds}, n_boot={n_boot}")


def _probe_rows(
    prepared: Prepared, vectors: pd.DataFrame, split: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """The ``split`` examples that have vectors and their ``[pos, neg]`` matrix, (N, 2D)."""
    missing = [c for c in (schema.POS_EMB, schema.NEG_EMB) if c not in vectors.columns]
    if missing:
        raise ValueError(f"vectors lack column(s) {missing}; found {list(vectors.columns)}")
    if not vectors.index.is_unique:
        raise ValueError("vectors must have one row per pair_key (its index has duplicates)")
    rows = prepared.split(split)
    rows = rows[rows[schema.PAIR_KEY].isin(vectors.index)].reset_index(drop=True)
    if rows.empty:
        return rows, np.zeros((0, 0))
    picked = vectors.loc[rows[schema.PAIR_KEY]]
    try:
        x = np.hstack([np.stack(picked[c].to_numpy()) for c in (schema.POS_EMB, schema.NEG_EMB)])
    except ValueError as err:
        raise ValueError(f"pos_emb/neg_emb must be equal-length float arrays: {err}") from err
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError("vectors hold non-finite values (NaN or inf)")
    return rows, x


def _twin_predictions(
    prepared: Prepared,
    rows: pd.DataFrame,
    task: str,
    model_cfg: ModelConfig | None,
    train_cfg: TrainConfig,
) -> np.ndarray:
    """Train the no-explanation twin and predict ``rows`` (in [0, 1]), (N,)."""
    data = build_experiment_data(prepared, {None})
    model, _ = fit_model(TWIN, task, data, model_cfg or ModelConfig(), train_cfg)
    return predict_all(model, to_tensors(rows, data.space)).astype(np.float64)


def _regression_probe(
    rows: pd.DataFrame, pred: np.ndarray, x: np.ndarray, how: _Settings
) -> dict[str, Any]:
    """Ridge on the embeddings predicts the twin's residual, out of fold."""
    target = rows[schema.TARGET].to_numpy(np.float64)
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS))
    cv = KFold(how.folds, shuffle=True, random_state=how.seed)
    fitted = cross_val_predict(ridge, x, target - pred, cv=cv)
    err_twin, err_probe = (pred - target) ** 2, (np.clip(pred + fitted, 0, 1) - target) ** 2

    def lift(idx: np.ndarray) -> float:
        return float(np.sqrt(err_twin[idx].mean()) - np.sqrt(err_probe[idx].mean()))

    rmse_twin, rmse_probe = float(np.sqrt(err_twin.mean())), float(np.sqrt(err_probe.mean()))
    return {
        "rmse_twin": rmse_twin,
        "rmse_probe": rmse_probe,
        "rmse_twin_rating": rmse_twin * how.span,
        "rmse_probe_rating": rmse_probe * how.span,
        "lift": rmse_twin - rmse_probe,
        "lift_rating": (rmse_twin - rmse_probe) * how.span,
        "lift_ci95": _bootstrap_ci(lift, len(rows), how.n_boot, how.seed),
    }


def _classification_probe(
    rows: pd.DataFrame, pred: np.ndarray, x: np.ndarray, how: _Settings
) -> dict[str, Any]:
    """Logistic regression on [twin logit, embeddings] against the logit alone, out of fold."""
    label = rows[schema.LABEL].to_numpy().astype(int)
    p = np.clip(pred, _EPS, 1 - _EPS)
    logit = (np.log(p) - np.log1p(-p))[:, None]  # (N, 1)
    cv = StratifiedKFold(how.folds, shuffle=True, random_state=how.seed)

    def scores(features: np.ndarray) -> np.ndarray:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        return cross_val_predict(model, features, label, cv=cv, method="decision_function")

    s_twin, s_probe = scores(logit), scores(np.hstack([logit, x]))

    def lift(idx: np.ndarray) -> float:
        return _safe_auc(s_probe[idx], label[idx]) - _safe_auc(s_twin[idx], label[idx])

    auc_twin, auc_probe = auc(s_twin, label), auc(s_probe, label)
    return {
        "auc_twin": auc_twin,
        "auc_twin_raw": auc(pred, label),  # the twin's own scores, no refit
        "auc_probe": auc_probe,
        "lift": auc_probe - auc_twin,
        "lift_ci95": _bootstrap_ci(lift, len(rows), how.n_boot, how.seed),
    }


def _safe_auc(score: np.ndarray, label: np.ndarray) -> float:
    """AUC, or NaN for a resample that holds one class only."""
    return auc(score, label) if 0 < label.sum() < len(label) else float("nan")


def _bootstrap_ci(
    stat: Callable[[np.ndarray], float], n: int, n_boot: int, seed: int
) -> list[float]:
    """Percentile 95% interval of ``stat`` over ``n_boot`` resamples of the ``n`` pairs (the
    same resamples for every call with the same seed, so probe and control are paired)."""
    rng = np.random.default_rng(seed)
    values = np.array([stat(rng.integers(0, n, n)) for _ in range(n_boot)])
    lo, hi = np.nanpercentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


# -- report -------------------------------------------------------------------------------------
def quality_report(
    table: pd.DataFrame,
    prepared: Prepared,
    vectors: pd.DataFrame | None = None,
    variant: str = "attributes",
    domain: str = "movie",
    tasks: Sequence[str] = (schema.REGRESSION,),
    **probe_kw: Any,
) -> dict[str, Any]:
    """``text_quality`` plus, when ``vectors`` are given, a ``residual_probe`` per task.

    Args:
        table: Explanation table.
        prepared: Prepared data the pairs come from.
        vectors: Optional ``pos_emb`` / ``neg_emb`` arrays indexed by ``pair_key``.
        variant: Prompt variant that wrote the table.
        domain: Domain of the prompts.
        tasks: Tasks to probe.
        **probe_kw: Passed to ``residual_probe`` (``model_cfg``, ``train_cfg``, ``seed``, ...).

    Returns:
        The text-quality dict with ``probe`` (task -> probe result) added when probed.
    """
    report = text_quality(table, prepared, variant, domain)
    if vectors is not None:
        report["probe"] = {t: residual_probe(prepared, vectors, t, **probe_kw) for t in tasks}
    return report


_ROWS = (
    ("distinct sentences", "distinct_ratio"),
    ("top sentence share", "top_share"),
    ("names candidate", "names_candidate"),
    ("names history", "names_history"),
    ("continuation names candidate", "continuation_names_candidate"),
    ("continuation names history", "continuation_names_history"),
    ("distinct continuations", "distinct_continuations"),
)


def format_quality(report: dict[str, Any]) -> str:
    """A short markdown rendering of ``quality_report``: a table per side, goals, probe lines."""
    lines = [
        f"### Explanation quality ({report['variant']}, {report['pairs']} pairs: "
        f"{report['flagged']} retried, {report['failed']} failed, "
        f"{report['unknown_pairs']} unknown)",
    ]
    for side in (schema.POSITIVE, schema.NEGATIVE):
        if side in report:
            lines += ["", *_side_table(side, report[side])]
    goals = ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in report["goals"].items())
    lines += ["", f"Goals: {goals}"]
    for task, probe in report.get("probe", {}).items():
        lines.append(_probe_line(task, probe))
    return "\n".join(lines)


def _side_table(side: str, q: dict[str, Any]) -> list[str]:
    rows = [f"| {side} (n={q['n']}) | share |", "|---|---:|"]
    rows += [f"| {label} | {q[key]:.3f} |" for label, key in _ROWS]
    rows.append(f"\nTop {side} sentence: {q['top_sentence']!r}")
    if q["seed_mismatch"]:
        rows.append(f"{q['seed_mismatch']} {side} sentences do not start with the variant's seed")
    return rows


def _probe_line(task: str, probe: dict[str, Any]) -> str:
    if "skipped" in probe:
        return f"- probe {task}: skipped ({probe['skipped']})"
    metric = "rmse" if task == schema.REGRESSION else "auc"
    base = probe["baseline_probe"]
    return (
        f"- probe {task} ({probe['split']}, n={probe['n']}): {metric} twin "
        f"{probe[f'{metric}_twin']:.4f} -> probe {probe[f'{metric}_probe']:.4f}, lift "
        f"{probe['lift']:+.4f} [95% CI {probe['lift_ci95'][0]:+.4f}, "
        f"{probe['lift_ci95'][1]:+.4f}]; permuted control {base['lift']:+.4f}"
    )
