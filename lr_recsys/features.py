"""Model features: id indices, user context tokens and explanation vectors as tensors.

Index 0 is reserved everywhere: padding in histories, "unknown" for users, items and context
values never seen when the feature space was built.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from lr_recsys import schema
from lr_recsys.data.prepare import Prepared

AGE_BUCKETS = (18, 25, 35, 45, 50, 56)  # MovieLens age groups
NUMERIC_BINS = 5


def _bucket(values: pd.Series, column: str) -> pd.Series:
    """Categorical strings per user; "" (missing) maps to the unknown index 0 later.

    Numeric columns with more than 10 distinct values are bucketed (age into the MovieLens age
    groups, anything else into quantiles); others are used as categories as they are.
    """
    values = values.fillna("").astype(str)
    numeric = pd.to_numeric(values.replace("", np.nan), errors="coerce")
    present = values != ""
    if not present.any() or numeric[present].notna().mean() < 0.9 or numeric.nunique() <= 10:
        return values
    if column == "age":
        out = pd.Series(np.digitize(numeric.fillna(0), AGE_BUCKETS), index=values.index).astype(str)
    else:
        ranks = numeric.rank(pct=True).fillna(0)
        out = np.minimum(ranks * NUMERIC_BINS, NUMERIC_BINS - 1).astype(int).astype(str)
    return out.where(numeric.notna(), "")


@dataclass
class FeatureSpace:
    """Id and context vocabularies; built once from the catalogue, shared by train and serve."""

    user_index: dict[str, int]
    item_index: dict[str, int]
    context_fields: list[str] = field(default_factory=list)
    context_index: list[dict[str, int]] = field(default_factory=list)
    user_context: dict[str, list[int]] = field(default_factory=dict)
    history_len: int = 5

    @property
    def n_users(self) -> int:
        return len(self.user_index) + 1

    @property
    def n_items(self) -> int:
        return len(self.item_index) + 1

    @property
    def context_sizes(self) -> list[int]:
        return [len(v) + 1 for v in self.context_index] or [1]

    @classmethod
    def build(cls, prepared: Prepared) -> FeatureSpace:
        """Index every catalogue item and every user with interactions; bucket user context."""
        items = sorted(prepared.items[schema.ITEM_ID].unique())
        users = sorted(prepared.examples[schema.USER_ID].unique())
        space = cls(
            {u: i + 1 for i, u in enumerate(users)}, {it: i + 1 for i, it in enumerate(items)}
        )
        if prepared.users is not None:
            table = prepared.users.set_index(schema.USER_ID)
            fields = [c for c in table.columns if c not in ("zip_code", "zip")]
            bucketed = {c: _bucket(table[c], c) for c in fields}
            space.context_fields = fields
            space.context_index = [
                {v: j + 1 for j, v in enumerate(sorted(set(bucketed[c]) - {""}))} for c in fields
            ]
            for u in table.index:
                space.user_context[u] = [
                    space.context_index[k].get(bucketed[c][u], 0) for k, c in enumerate(fields)
                ]
        return space

    def to_dict(self) -> dict:
        """JSON-ready copy (saved with a model so serving indexes exactly as training did)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSpace:
        return cls(**data)

    def users_to_idx(self, ids: pd.Series) -> np.ndarray:
        return ids.map(self.user_index).fillna(0).to_numpy(dtype=np.int64)

    def items_to_idx(self, ids: pd.Series) -> np.ndarray:
        return ids.map(self.item_index).fillna(0).to_numpy(dtype=np.int64)

    def histories_to_idx(self, histories: pd.Series) -> np.ndarray:
        if len(histories) == 0:
            return np.zeros((0, self.history_len), dtype=np.int64)
        flat = pd.Series(np.concatenate(histories.to_numpy()), dtype=object)
        idx = flat.map(self.item_index).fillna(0).to_numpy(dtype=np.int64)
        return idx.reshape(len(histories), -1)

    def context_to_idx(self, user_ids: pd.Series) -> np.ndarray:
        width = max(len(self.context_fields), 1)
        empty = [0] * width
        return np.array(
            [self.user_context.get(u, empty) for u in user_ids], dtype=np.int64
        ).reshape(-1, width)


@dataclass
class TensorData:
    """One split as tensors; optional explanation vectors ride along per example."""

    user: torch.Tensor  # (N,)
    item: torch.Tensor  # (N,)
    hist: torch.Tensor  # (N, L) item indices, 0 = padding
    ctx: torch.Tensor  # (N, F)
    target: torch.Tensor  # (N,) rating scaled to [0, 1]
    label: torch.Tensor  # (N,) 1.0 if rating >= 4
    pos: torch.Tensor | None = None  # (N, D) positive explanation embedding
    neg: torch.Tensor | None = None  # (N, D) negative explanation embedding

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gather the rows ``idx`` into a model batch."""
        out = {
            "user": self.user[idx],
            "item": self.item[idx],
            "hist": self.hist[idx],
            "ctx": self.ctx[idx],
            "target": self.target[idx],
            "label": self.label[idx],
        }
        if self.pos is not None and self.neg is not None:
            out["pos"] = self.pos[idx]
            out["neg"] = self.neg[idx]
        return out


def to_tensors(
    examples: pd.DataFrame,
    space: FeatureSpace,
    explanation_vectors: tuple[np.ndarray, np.ndarray] | None = None,
) -> TensorData:
    """Encode prepared examples (one split) as tensors.

    Args:
        examples: Rows of ``Prepared.examples``.
        space: The feature space built from the catalogue.
        explanation_vectors: Optional (positive, negative) arrays aligned with ``examples``.
    """
    data = TensorData(
        user=torch.from_numpy(space.users_to_idx(examples[schema.USER_ID])),
        item=torch.from_numpy(space.items_to_idx(examples[schema.ITEM_ID])),
        hist=torch.from_numpy(space.histories_to_idx(examples[schema.HISTORY])),
        ctx=torch.from_numpy(space.context_to_idx(examples[schema.USER_ID])),
        target=torch.from_numpy(examples[schema.TARGET].to_numpy(dtype=np.float32)),
        label=torch.from_numpy(examples[schema.LABEL].to_numpy(dtype=np.float32)),
    )
    if explanation_vectors is not None:
        pos, neg = explanation_vectors
        if len(pos) != len(examples) or len(neg) != len(examples):
            raise ValueError(
                f"explanation vectors have {len(pos)}/{len(neg)} rows, expected {len(examples)}"
            )
        data.pos = torch.as_tensor(np.asarray(pos, dtype=np.float32))
        data.neg = torch.as_tensor(np.asarray(neg, dtype=np.float32))
    return data
