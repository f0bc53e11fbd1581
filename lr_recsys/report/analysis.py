"""The report's analyses of a trained LR-Recsys model (paper Sec. 5.5, Figs. 6-7, Sec. 6).

* attention: each input token's share of the self-attention per prediction (the attention a token
  receives, averaged over the queries: the shares of one prediction sum to 1), its distribution
  on the explanation tokens, and how it differs for high vs low ratings, correct vs wrong
  predictions and LLM-written vs distilled explanation vectors;
* per-item insights: the most frequent keywords of each item's positive and negative
  explanations, each occurrence weighted by the attention the model paid to that explanation;
* uncertainty vs gain: test pairs binned by the twin's uncertainty (the spread of its
  predictions across seeds), LR-Recsys's RMSE gain over the twin per bin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from lr_recsys.compare import paired_test
from lr_recsys.features import TensorData
from lr_recsys.models.base import RecModel
from lr_recsys.models.lr_recsys_net import token_importance

TOKENS = ("positive", "negative", "user", "item", "history", "context")
TOKENS_POS_ONLY = ("positive", "user", "item", "history", "context")


def token_names(n_tokens: int) -> tuple[str, ...]:
    """Names of the input tokens of an LR-Recsys network with ``n_tokens`` tokens."""
    if n_tokens == len(TOKENS):
        return TOKENS
    if n_tokens == len(TOKENS_POS_ONLY):
        return TOKENS_POS_ONLY
    raise ValueError(f"an LR-Recsys network has 5 or 6 input tokens, got {n_tokens}")


@torch.no_grad()
def attention_shares(
    model: RecModel, data: TensorData, batch_size: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Per prediction: each token's attention share, (N, T), rows summing to 1, and the
    prediction in [0, 1], (N,).

    Raises:
        TypeError: the model has no attention head (e.g. ``lr-recsys-ncf`` or a baseline).
    """
    if getattr(model, "attn", None) is None:
        raise TypeError(f"{type(model).__name__} has no attention layer to analyse")
    model.eval()
    shares, preds = [], []
    for start in range(0, len(data), batch_size):
        batch = data.batch(torch.arange(start, min(start + batch_size, len(data))))
        out = model(batch)
        shares.append(token_importance(out["attention"]))  # (B, T)
        preds.append(torch.sigmoid(out["logit"]))
    if not shares:
        return np.zeros((0, model.n_tokens), np.float32), np.zeros(0, np.float32)
    return torch.cat(shares).numpy(), torch.cat(preds).numpy()


def _group_means(shares: np.ndarray, groups: dict[str, np.ndarray], tokens: Sequence[str]):
    out = {}
    for name, mask in groups.items():
        mask = np.asarray(mask, bool)
        if mask.any():
            out[name] = {"n": int(mask.sum()),
                         **{t: float(shares[mask, k].mean()) for k, t in enumerate(tokens)}}  # fmt: skip
    return out


def attention_summary(
    shares: np.ndarray,
    label: np.ndarray,
    pred: np.ndarray,
    source: np.ndarray | None = None,
    bins: int = 20,
) -> dict:
    """Figures 6-7 of one model on one split.

    Args:
        shares: (N, T) attention shares (``attention_shares``).
        label: (N,) high (True) / low (False) rating.
        pred: (N,) predictions in [0, 1]; a prediction is correct when ``pred >= 0.5`` agrees
            with ``label``.
        source: (N,) ``llm`` / ``distilled`` per pair, when known.
        bins: Histogram bins of the explanation tokens' shares.
    """
    shares = np.asarray(shares, np.float64)
    tokens = token_names(shares.shape[1])
    label = np.asarray(label, bool)
    correct = (np.asarray(pred) >= 0.5) == label
    sums = shares.sum(1)
    groups = {"all": np.ones(len(shares), bool), "high rating": label, "low rating": ~label,
              "correct": correct, "wrong": ~correct}  # fmt: skip
    if source is not None:
        source = np.asarray(source).astype(str)
        groups |= {f"{s} explanation": source == s for s in sorted(set(source))}
    hist = {}
    upper = float(max(shares[:, : 2 if tokens[1] == "negative" else 1].max(initial=0), 1e-6))
    edges = np.linspace(0.0, upper, bins + 1)
    for k, t in enumerate(tokens[:2]):
        if t in ("positive", "negative"):
            hist[t] = {g: np.histogram(shares[np.asarray(m, bool), k], edges)[0].tolist()
                       for g, m in (("high rating", label), ("low rating", ~label))}  # fmt: skip
    return {
        "tokens": list(tokens),
        "n": int(len(shares)),
        "sum_max_error": float(np.abs(sums - 1.0).max(initial=0.0)),
        "means": _group_means(shares, groups, tokens),
        "histogram": {"edges": edges.tolist(), "counts": hist},
        "accuracy": float(correct.mean()) if len(correct) else None,
    }


# -- per-item insights --------------------------------------------------------------------------

STOPWORDS = frozenset(
    str.split(
        """a about above after again against all also am an and any are as at be been being below
    between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my no
    nor not of off on once only or other our out over own same she should so some such than that
    the their them then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your one ones much many
    lot lots usually often really quite always never example s t"""
    )
)
TEMPLATE_WORDS = frozenset(
    str.split(
        """consumer consumers watched watch watching movie movies film films because like likes liked
    found find enjoy enjoys enjoyed prefer prefers preferred item items product bought buy hotel
    stayed stay restaurant visited visit candidate"""
    )
)
_WORD = re.compile(r"[a-z][a-z'-]*[a-z]|[a-z]")


def words(text: str) -> list[str]:
    """Lower-case word tokens of ``text`` (hyphenated words and contractions kept whole)."""
    return _WORD.findall(str(text).lower())


def keyword_scores(
    texts: Iterable[str], weights: Iterable[float], exclude: Iterable[Iterable[str]] | None = None
) -> pd.DataFrame:
    """Attention-weighted keyword counts over explanations.

    Each occurrence of a word in ``texts[k]`` adds ``weights[k]`` to its score and 1 to its count;
    stop words, the domain's template words and ``exclude[k]`` (e.g. the titles the pair's
    explanation names) are skipped. Returns ``word, score, count, explanations`` (how many texts
    mention it) sorted by score, then word.
    """
    texts, weights = list(texts), [float(w) for w in weights]
    if len(texts) != len(weights):
        raise ValueError(f"{len(texts)} texts but {len(weights)} weights")
    excl = list(exclude) if exclude is not None else [()] * len(texts)
    score: dict[str, float] = {}
    count: dict[str, int] = {}
    docs: dict[str, int] = {}
    for text, w, skip in zip(texts, weights, excl, strict=True):
        if text is None or (isinstance(text, float) and np.isnan(text)):
            continue
        skip = {s.lower() for s in skip}
        seen = set()
        for word in words(text):
            if word in STOPWORDS or word in TEMPLATE_WORDS or word in skip or len(word) < 3:
                continue
            score[word] = score.get(word, 0.0) + w
            count[word] = count.get(word, 0) + 1
            if word not in seen:
                docs[word] = docs.get(word, 0) + 1
                seen.add(word)
    df = pd.DataFrame({"word": list(score), "score": list(score.values()),
                       "count": [count[w] for w in score], "explanations": [docs[w] for w in score]})  # fmt: skip
    if df.empty:
        return df
    return df.sort_values(["score", "word"], ascending=[False, True]).reset_index(drop=True)


def item_insights(pairs: pd.DataFrame, items: int = 8, keywords: int = 8) -> list[dict]:
    """What consumers like and dislike about the items with the most explained pairs.

    Args:
        pairs: One row per LLM-explained pair: ``item_id``, ``title``, ``positive``,
            ``negative``, ``attn_positive``, ``attn_negative`` (the model's attention shares on
            the two explanation tokens) and ``exclude`` (words not to count, e.g. the titles the
            explanation names).
        items: How many items (most explained pairs first; ties by item id).
        keywords: Keywords per side.
    """
    need = {"item_id", "title", "positive", "negative", "attn_positive", "attn_negative", "exclude"}
    missing = need - set(pairs.columns)
    if missing:
        raise ValueError(f"insight pairs lack column(s) {sorted(missing)}")
    counts = pairs.groupby("item_id").size().reset_index(name="n")
    counts["key"] = counts["item_id"].astype(str)
    top = counts.sort_values(["n", "key"], ascending=[False, True]).head(items)
    out = []
    for item_id, n in zip(top["item_id"], top["n"], strict=True):
        rows = pairs[pairs["item_id"] == item_id]
        entry = {"item_id": item_id, "title": str(rows["title"].iloc[0]), "pairs": int(n)}
        for side in ("positive", "negative"):
            kw = keyword_scores(rows[side], rows[f"attn_{side}"], rows["exclude"]).head(keywords)
            entry[side] = kw.to_dict("records")
            entry[f"attention_{side}"] = float(rows[f"attn_{side}"].mean())
        out.append(entry)
    return out


# -- uncertainty vs gain ------------------------------------------------------------------------


def uncertainty_gain(
    twin: dict[int, np.ndarray], model: dict[int, np.ndarray], target: np.ndarray, bins: int = 5
) -> dict:
    """LR-Recsys's RMSE gain over its twin per bin of the twin's uncertainty.

    The uncertainty of a pair is the standard deviation of the twin's predictions across seeds;
    bins are its quantiles. Per bin and seed (the seeds both ran): RMSE of each; the gain is the
    relative RMSE reduction in percent (positive = LR-Recsys better), mean ± std across seeds,
    with the paired t-test of the per-seed RMSEs.
    """
    seeds = sorted(set(twin) & set(model))
    if len(seeds) < 2:
        raise ValueError(
            f"uncertainty needs the twin and the model on 2+ shared seeds, got {seeds}"
        )
    target = np.asarray(target, np.float64)
    stack = np.stack([np.asarray(twin[s], np.float64) for s in seeds])  # (S, N)
    if stack.shape[1] != len(target):
        raise ValueError(f"{stack.shape[1]} predictions for {len(target)} targets")
    unc = stack.std(0, ddof=1)
    edges = np.quantile(unc, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, unc, side="right") - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        if not mask.any():
            continue

        def rmse(p: np.ndarray, mask=mask) -> float:
            return float(np.sqrt(np.mean((p[mask] - target[mask]) ** 2)))

        t = [rmse(np.asarray(twin[s], np.float64)) for s in seeds]
        m = [rmse(np.asarray(model[s], np.float64)) for s in seeds]
        gain = 100.0 * (np.asarray(t) - np.asarray(m)) / np.asarray(t)
        rows.append({
            "bin": b, "n": int(mask.sum()), "uncertainty_lo": float(edges[b]),
            "uncertainty_hi": float(edges[b + 1]), "rmse_twin": float(np.mean(t)),
            "rmse_model": float(np.mean(m)), "gain_pct": float(gain.mean()),
            "gain_std": float(gain.std(ddof=1)), "p": paired_test(m, t),
        })  # fmt: skip
    return {"seeds": seeds, "bins": rows}
