"""Scoring one user's candidates: explanation vectors per candidate, then one batched forward pass.

Shared by the online ranker (``lr_recsys.serve.ranker``) and the pipeline's served-text step
(``lr_recsys.steps.served``), so what the pipeline explains is exactly what the service ranks.

Each candidate's explanation vectors come from, in order:

* ``llm``: the AutoEncoder embedding of the LLM's explanation of *this* (user, history,
  candidate) pair — a stored explanation whose pair key no longer matches the user's current
  history is not used (it explains a different pair);
* ``distilled``: the distilled explainer (``lr_recsys.distill``) run on the candidate, the
  user's history and context at request time, exactly as training computed distilled pairs;
* ``fallback``: all-zero vectors (the training mean: embeddings are standardised with training
  statistics), only where no distilled vector can be computed; ``reason`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lr_recsys import schema
from lr_recsys.distill import DISTILLED, LLM, DistilledExplainer, load_distiller
from lr_recsys.features import FeatureSpace
from lr_recsys.models.base import RecModel
from lr_recsys.models.lr_recsys_net import token_importance

FALLBACK = "fallback"
NO_DISTILLER = "this model version was registered without a distilled explainer"
NO_EXPLANATIONS = "this model reads no explanation features"
NO_HISTORY = "unknown user without a history: nothing to distil from"


@dataclass
class Distiller:
    """The distilled explainer of a model version with the feature space it was trained on."""

    model: DistilledExplainer
    space: FeatureSpace
    cand_all: torch.Tensor | None = None  # every item's projected text vector, computed once

    def __post_init__(self) -> None:
        self.model.eval()
        with torch.inference_mode():
            self.cand_all = self.model.cand(self.model.item_text)  # (n_items, d)

    @classmethod
    def load(cls, directory: Path) -> Distiller | None:
        """The explainer saved under ``directory`` (``None`` when there is none)."""
        if not (Path(directory) / "config.json").exists():
            return None
        model, space = load_distiller(directory)
        return cls(model, space)


@dataclass
class Scored:
    scores: np.ndarray  # (N,) sigmoid outputs
    attention: np.ndarray | None  # (N, T) attention each input token receives
    source: np.ndarray  # (N,) llm | distilled | fallback
    reason: str | None  # why the fallbacks could not be distilled (None: no fallbacks)


def padded_history(history: list[str], length: int) -> list[str]:
    """The last ``length`` items, left-padded with ``PAD_ITEM`` (as training examples are)."""
    hist = [schema.PAD_ITEM] * length + list(history)
    return hist[-length:]


def pair_keys(user_id: str, history: list[str], candidate_ids: list[str], length: int) -> list[str]:
    """The pair key of every (user, current history, candidate)."""
    padded = padded_history(history, length)
    return [schema.pair_key(user_id, padded, c) for c in candidate_ids]


def score_candidates(
    model: RecModel,
    space: FeatureSpace,
    distiller: Distiller | None,
    user_id: str,
    history: list[str] | None,
    candidate_ids: list[str],
    llm_pos: np.ndarray | None = None,
    llm_neg: np.ndarray | None = None,
    has_llm: np.ndarray | None = None,
    reads_explanations: bool = True,
) -> Scored:
    """Scores, attention and explanation source of every candidate (one forward pass).

    Args:
        model: The ranking network (eval mode).
        space: The feature space it was trained with.
        distiller: The model version's distilled explainer, if it has one.
        user_id: Raw user id.
        history: The user's latest items, oldest first (``None``: unknown).
        candidate_ids: Catalogue item ids (validated by the caller).
        llm_pos, llm_neg: ``(N, D)`` LLM embeddings, used where ``has_llm`` is true.
        has_llm: ``(N,)`` which candidates have an LLM embedding for this exact pair.
        reads_explanations: Whether the model has explanation inputs at all (the twin and the
            baselines do not: nothing is distilled for them).
    """
    n = len(candidate_ids)
    dim = model.inputs.explanation_dim
    has_llm = np.zeros(n, dtype=bool) if has_llm is None else np.asarray(has_llm, dtype=bool)
    pos = np.zeros((n, dim), dtype=np.float32)
    neg = np.zeros((n, dim), dtype=np.float32)
    source = np.full(n, FALLBACK, dtype=object)
    if has_llm.any():
        pos[has_llm], neg[has_llm] = llm_pos[has_llm], llm_neg[has_llm]
        source[has_llm] = LLM
    need = ~has_llm
    known = history is not None or user_id in space.user_index
    reason = None
    if need.any():
        if not reads_explanations:
            reason = NO_EXPLANATIONS
        elif distiller is None:
            reason = NO_DISTILLER
        elif not known:
            reason = NO_HISTORY
        else:
            pos[need], neg[need] = distil(distiller, user_id, history or [], [c for c, k in zip(candidate_ids, need, strict=True) if k])  # fmt: skip
            source[need] = DISTILLED
    hist_idx = [
        space.item_index.get(i, 0) for i in padded_history(history or [], space.history_len)
    ]
    ctx = space.user_context.get(user_id, [0] * max(len(space.context_fields), 1))
    batch = {
        "user": torch.full((n,), space.user_index.get(user_id, 0), dtype=torch.long),
        "item": torch.tensor([space.item_index[i] for i in candidate_ids], dtype=torch.long),
        "hist": torch.tensor([hist_idx], dtype=torch.long).expand(n, -1),  # (N, L)
        "ctx": torch.tensor([ctx], dtype=torch.long).expand(n, -1),  # (N, F)
        "pos": torch.from_numpy(pos),  # (N, D)
        "neg": torch.from_numpy(neg),
    }
    with torch.inference_mode():
        out = model(batch)
    scores = torch.sigmoid(out["logit"]).numpy()
    attention = token_importance(out["attention"]).numpy() if "attention" in out else None
    return Scored(scores, attention, source, reason)


def distil(
    distiller: Distiller, user_id: str, history: list[str], candidate_ids: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Distilled (positive, negative) embeddings of (user, history, candidate) pairs, ``(N, D)``.

    The same function as ``DistilledExplainer.forward`` (tested equal), arranged for one user:
    the history and context blocks are computed once, the candidates' projections are a lookup.
    """
    sp, m = distiller.space, distiller.model
    index = sp.item_index  # plain dict lookups: the pandas mappers cost more than the network
    item = torch.tensor([index.get(c, 0) for c in candidate_ids], dtype=torch.long)
    hist = torch.tensor([[index.get(h, 0) for h in padded_history(history, sp.history_len)]], dtype=torch.long)  # fmt: skip
    width = max(len(sp.context_fields), 1)
    ctx = torch.tensor([sp.user_context.get(user_id, [0] * width)], dtype=torch.long)
    with torch.inference_mode():
        cand = distiller.cand_all[item]  # (N, d)
        mask = (hist > 0).float().unsqueeze(-1)  # (1, L, 1)
        mean = (m.item_text[hist] * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (1, T)
        h = m.hist(mean).expand_as(cand)  # (N, d)
        c = m.ctx(ctx).expand_as(cand)
        out = m.net(torch.cat([cand, h, cand * h, c], dim=1))  # (N, 2 * D)
    d = m.out_dim
    return out[:, :d].numpy().astype(np.float32), out[:, d:].numpy().astype(np.float32)
