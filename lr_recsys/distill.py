"""The distilled explainer: explanation embeddings for pairs the LLM did not explain.

The paper (Sec. 6) leaves "distilling the LLM's reasoning into a small model" as future work; this
is that model. It is trained on the LLM-explained pairs' AutoEncoder embeddings (standardised, as
the DNN reads them) and predicts the positive and negative embedding of any (consumer, history,
candidate) pair from what serving knows without an LLM:

* the candidate's catalogue-text vector and the masked mean of the history items' vectors
  (all-MiniLM-L6-v2, ``lr_recsys.encoder.items``), each projected to ``d``;
* their elementwise product (does the candidate resemble what the consumer just consumed?);
* the consumer's context features (age, gender, occupation for ml-100k).

``[cand, hist, cand * hist, ctx]`` (B, 4d) -> MLP -> (B, 2 * 8): the positive and negative
embedding. Loss: MSE; early stopping on a held-out tenth of the training pairs. Fidelity is
reported on LLM pairs it never trained on (the validation split's), against predicting the
training mean. ``explanation_vectors`` gives every pair its vector and ``explanation_source``:
``llm`` where the LLM explained it, ``distilled`` elsewhere.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lr_recsys import schema
from lr_recsys.features import FeatureSpace
from lr_recsys.models.layers import ContextEmbedding

log = logging.getLogger(__name__)

MIN_TRAIN_PAIRS = 2  # one to fit, one to stop on; fidelity says how useful so few are
LLM, DISTILLED = "llm", "distilled"  # values of the explanation_source feature
SOURCES = (LLM, DISTILLED)


@dataclass
class DistillConfig:
    """Distilled-explainer hyperparameters (chosen on held-out LLM pairs of the training split)."""

    dim: int = 32  # projection of each input block
    hidden: int = 64
    dropout: float = 0.1
    lr: float = 3e-3  # Adam
    weight_decay: float = 1e-5
    batch_size: int = 256
    epochs: int = 100
    patience: int = 8  # epochs without a better held-out MSE
    holdout: float = 0.1  # share of the training LLM pairs used for early stopping
    seed: int = 0


class DistilledExplainer(nn.Module):
    """(candidate, history, context) -> (positive, negative) explanation embedding."""

    def __init__(
        self,
        n_items: int,
        text_dim: int,
        context_sizes: tuple[int, ...],
        out_dim: int = 8,
        cfg: DistillConfig | None = None,
    ) -> None:
        super().__init__()
        cfg = cfg or DistillConfig()
        self.cfg, self.out_dim = cfg, out_dim
        self.register_buffer("item_text", torch.zeros(n_items, text_dim))
        self.cand = nn.Linear(text_dim, cfg.dim)
        self.hist = nn.Linear(text_dim, cfg.dim)
        self.ctx = ContextEmbedding(tuple(context_sizes), cfg.dim)
        self.net = nn.Sequential(
            nn.Linear(4 * cfg.dim, cfg.hidden),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, 2 * out_dim),
        )

    def set_item_vectors(self, matrix: np.ndarray | torch.Tensor) -> None:
        m = torch.as_tensor(np.asarray(matrix, dtype=np.float32))
        if tuple(m.shape) != tuple(self.item_text.shape):
            raise ValueError(
                f"item vectors of shape {tuple(m.shape)}; the explainer was built for "
                f"{tuple(self.item_text.shape)} (items x text dim)"
            )
        self.item_text.copy_(m)

    def forward(
        self, item: torch.Tensor, hist: torch.Tensor, ctx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cand = self.cand(self.item_text[item])  # (B, d)
        mask = (hist > 0).float().unsqueeze(-1)  # (B, L, 1)
        mean = (self.item_text[hist] * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, T)
        h = self.hist(mean)  # (B, d)
        out = self.net(torch.cat([cand, h, cand * h, self.ctx(ctx)], dim=1))  # (B, 2 * out)
        return out[:, : self.out_dim], out[:, self.out_dim :]


def _inputs(examples: pd.DataFrame, space: FeatureSpace) -> tuple[torch.Tensor, ...]:
    return (
        torch.from_numpy(space.items_to_idx(examples[schema.ITEM_ID])),
        torch.from_numpy(space.histories_to_idx(examples[schema.HISTORY])),
        torch.from_numpy(space.context_to_idx(examples[schema.USER_ID])),
    )


def _targets(vectors: pd.DataFrame, keys: pd.Series) -> torch.Tensor:
    rows = vectors.loc[keys.to_numpy()]
    pos = np.stack(rows[schema.POS_EMB].to_numpy()).astype(np.float32)
    neg = np.stack(rows[schema.NEG_EMB].to_numpy()).astype(np.float32)
    return torch.from_numpy(np.concatenate([pos, neg], axis=1))  # (N, 16)


@torch.no_grad()
def predict(
    model: DistilledExplainer, examples: pd.DataFrame, space: FeatureSpace, batch: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Distilled (positive, negative) embeddings of ``examples``, ``(N, 8)`` each."""
    model.eval()
    item, hist, ctx = _inputs(examples, space)
    pos, neg = [], []
    for s in range(0, len(item), batch):
        p, n = model(item[s : s + batch], hist[s : s + batch], ctx[s : s + batch])
        pos.append(p.numpy())
        neg.append(n.numpy())
    d = model.out_dim
    empty = np.zeros((0, d), dtype=np.float32)
    return (
        np.concatenate(pos).astype(np.float32) if pos else empty,
        np.concatenate(neg).astype(np.float32) if neg else empty,
    )


def fidelity(pred: np.ndarray, true: np.ndarray, mean: np.ndarray) -> dict[str, float]:
    """MSE and mean cosine of ``pred`` vs ``true`` ((N, D)), and of the constant ``mean``."""

    def cos(a: np.ndarray, b: np.ndarray) -> float:
        num = (a * b).sum(1)
        den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-9
        return float((num / den).mean())

    const = np.broadcast_to(mean, true.shape)
    mse, mse_mean = float(((pred - true) ** 2).mean()), float(((const - true) ** 2).mean())
    return {
        "mse": mse,
        "mse_mean_predictor": mse_mean,
        "r2": 1.0 - mse / mse_mean if mse_mean > 0 else 0.0,
        "cosine": cos(pred, true),
        "cosine_mean_predictor": cos(const, true),
    }


def fit_distiller(
    train: pd.DataFrame,
    vectors: pd.DataFrame,
    space: FeatureSpace,
    item_matrix: np.ndarray,
    cfg: DistillConfig | None = None,
    heldout: pd.DataFrame | None = None,
) -> tuple[DistilledExplainer, dict[str, Any]]:
    """Train on ``train`` examples (LLM-explained, training split) against their ``vectors``
    (``pos_emb``/``neg_emb`` indexed by ``pair_key``); report fidelity on ``heldout`` LLM pairs.

    Raises:
        ValueError: fewer than 10 training pairs, or pairs without a vector.
    """
    cfg = cfg or DistillConfig()
    missing = int((~train[schema.PAIR_KEY].isin(vectors.index)).sum())
    if missing:
        raise ValueError(f"distiller: {missing} training pairs have no LLM embedding")
    if len(train) < MIN_TRAIN_PAIRS:
        raise ValueError(
            f"distiller: {len(train)} LLM-explained training pairs; at least {MIN_TRAIN_PAIRS} "
            "are needed (raise llm_pairs)"
        )
    if len(train) < 100:
        log.warning("distiller: only %d LLM training pairs; its vectors are close to the mean "
                    "(see the fidelity report)", len(train))  # fmt: skip
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    y = _targets(vectors, train[schema.PAIR_KEY])
    dim = y.shape[1] // 2
    model = DistilledExplainer(len(item_matrix), item_matrix.shape[1], tuple(space.context_sizes), dim, cfg)  # fmt: skip
    model.set_item_vectors(item_matrix)
    x = _inputs(train, space)
    order = rng.permutation(len(train))
    n_hold = max(1, int(round(cfg.holdout * len(train))))
    hold, fit = order[:n_hold], order[n_hold:]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best, best_state, best_epoch, stale = float("inf"), None, 0, 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        for s in range(0, len(fit), cfg.batch_size):
            idx = torch.from_numpy(fit[s : s + cfg.batch_size])
            p, n = model(*(t[idx] for t in x))
            loss = ((torch.cat([p, n], 1) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        rng.shuffle(fit)
        model.eval()
        with torch.no_grad():
            h = torch.from_numpy(hold)
            p, n = model(*(t[h] for t in x))
            val = float(((torch.cat([p, n], 1) - y[h]) ** 2).mean())
        if val < best - 1e-6:
            best, best_epoch, stale = val, epoch, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    mean = y[torch.from_numpy(fit)].mean(0).numpy()
    metrics: dict[str, Any] = {"train_pairs": len(fit), "holdout_pairs": n_hold,
                               "best_epoch": best_epoch, "holdout_mse": best}  # fmt: skip
    if heldout is not None and len(heldout):
        hp, hn = predict(model, heldout, space)
        true = _targets(vectors, heldout[schema.PAIR_KEY]).numpy()
        metrics["heldout_pairs"] = len(heldout)
        for side, pred, sl in (("pos", hp, slice(0, dim)), ("neg", hn, slice(dim, 2 * dim))):
            for k, v in fidelity(pred, true[:, sl], mean[sl]).items():
                metrics[f"{side}_{k}"] = v
    log.info("distiller: %s", metrics)
    return model, metrics


def explanation_vectors(
    examples: pd.DataFrame,
    llm_vectors: pd.DataFrame,
    model: DistilledExplainer | None,
    space: FeatureSpace,
    mode: str = "mixed",
) -> pd.DataFrame:
    """Every example's explanation embedding and its source, indexed by ``pair_key``.

    Args:
        examples: Rows with ``pair_key, user_id, item_id, history``.
        llm_vectors: LLM pairs' standardised AE embeddings (``pos_emb``/``neg_emb`` by pair key).
        model: The distilled explainer (needed unless every pair has an LLM embedding and the
            mode is not ``distilled``).
        mode: ``mixed`` (LLM where explained, distilled elsewhere), ``llm`` (LLM where explained,
            zeros = the training mean elsewhere: the feature an ID-only fallback gives) or
            ``distilled`` (distilled everywhere).

    Returns:
        ``pos_emb``, ``neg_emb`` (float32 arrays) and ``explanation_source`` per pair key.
    """
    if mode not in ("mixed", "llm", "distilled"):
        raise ValueError(f"unknown explanation mode {mode!r}; expected mixed, llm or distilled")
    ex = examples.drop_duplicates(schema.PAIR_KEY)
    keys = ex[schema.PAIR_KEY]
    has = keys.isin(llm_vectors.index).to_numpy()
    dim = len(llm_vectors[schema.POS_EMB].iloc[0]) if len(llm_vectors) else 8
    pos = np.zeros((len(ex), dim), dtype=np.float32)
    neg = np.zeros((len(ex), dim), dtype=np.float32)
    if mode != "distilled" and has.any():
        t = _targets(llm_vectors, keys[has]).numpy()
        pos[has], neg[has] = t[:, :dim], t[:, dim:]
    need = ~has if mode == "mixed" else (np.ones(len(ex), bool) if mode == "distilled" else None)
    if need is not None and need.any():
        if model is None:
            raise ValueError(
                f"{int(need.sum())} pairs need distilled vectors but no model was given"
            )
        pos[need], neg[need] = predict(model, ex[need], space)
    source = np.where(has & (mode != "distilled"), LLM, DISTILLED)
    return pd.DataFrame(
        {schema.POS_EMB: list(pos), schema.NEG_EMB: list(neg), schema.EXPLANATION_SOURCE: source},
        index=pd.Index(keys.to_numpy(), name=schema.PAIR_KEY),
    )


def save_distiller(model: DistilledExplainer, space: FeatureSpace, directory: Path) -> None:
    """``weights.safetensors`` + ``config.json`` (sizes, hyperparameters, feature space)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, directory / "weights.safetensors")  # fmt: skip
    n_items, text_dim = model.item_text.shape
    (directory / "config.json").write_text(json.dumps({
        "n_items": int(n_items), "text_dim": int(text_dim), "out_dim": model.out_dim,
        "context_sizes": list(space.context_sizes), "cfg": asdict(model.cfg),
        "space": space.to_dict(),
    }))  # fmt: skip


def load_distiller(directory: Path) -> tuple[DistilledExplainer, FeatureSpace]:
    """Rebuild a distiller written by ``save_distiller``."""
    directory = Path(directory)
    cfg = json.loads((directory / "config.json").read_text())
    model = DistilledExplainer(cfg["n_items"], cfg["text_dim"], tuple(cfg["context_sizes"]),
                               cfg["out_dim"], DistillConfig(**cfg["cfg"]))  # fmt: skip
    model.load_state_dict(load_file(directory / "weights.safetensors"))
    model.eval()
    return model, FeatureSpace.from_dict(cfg["space"])
