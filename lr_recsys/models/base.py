"""The small abstract base every model implements, and the name registry.

Every model (LR-Recsys, its ablations, the baselines) maps a batch dict to a logit; the rating
regression prediction is ``sigmoid(logit)`` on the [0, 1] scale and the classification prediction
is the probability ``sigmoid(logit)``. Losses follow Eq. 14: MSE for regression, BCE for
classification. One training loop drives them all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from lr_recsys import schema
from lr_recsys.config import ModelConfig

Batch = dict[str, torch.Tensor]
#: the explanation vectors a model reads: AutoEncoder embeddings ("ae"); the same restricted to
#: one origin, the LLM ("ae-llm") or the distilled explainer ("ae-distilled", ``lr_recsys.distill``);
#: raw MiniLM vectors ("minilm"); None: no explanation vectors
ExplanationSource = Literal["ae", "ae-llm", "ae-distilled", "minilm"] | None


@dataclass(frozen=True)
class ModelInputs:
    """Sizes of the input vocabularies a model is built for."""

    n_users: int
    n_items: int
    context_sizes: tuple[int, ...]
    explanation_dim: int = 8
    item_text_dim: int = 0  # width of the item text vectors (384, MiniLM); 0: the model reads none


class RecModel(nn.Module, ABC):
    """Base class: ``forward`` -> ``{"logit": (B,), ...}``, plus ``loss`` and ``predict``."""

    #: which explanation vectors the model consumes (None: it uses no explanation text)
    explanation_source: ExplanationSource = None
    #: whether the model reads item text vectors (then it has ``set_item_vectors``)
    uses_item_vectors: bool = False

    def __init__(self, inputs: ModelInputs, cfg: ModelConfig) -> None:
        super().__init__()
        self.inputs = inputs
        self.cfg = cfg

    @abstractmethod
    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Return at least ``{"logit": (B,)}``."""

    def loss(self, batch: Batch, task: str) -> torch.Tensor:
        """MSE on the [0, 1] rating (regression) or BCE on the high/low label (classification),
        plus ``cfg.embedding_l2`` times the mean squared norm of the embedding rows the batch
        looked up (the classic per-example L2 of matrix factorisation: only the rows in use are
        shrunk, unlike weight decay, which shrinks every row at every step)."""
        if task not in schema.TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {schema.TASKS}")
        penalty: list[torch.Tensor] = []
        hooks = []
        if self.cfg.embedding_l2 > 0:
            hooks = [m.register_forward_hook(lambda _m, _i, out: penalty.append(out.pow(2).sum()))
                     for m in self.modules() if isinstance(m, nn.Embedding)]  # fmt: skip
        try:
            logit = self(batch)["logit"]
        finally:
            for h in hooks:
                h.remove()
        if task == schema.REGRESSION:
            loss = F.mse_loss(torch.sigmoid(logit), batch["target"])
        else:
            loss = F.binary_cross_entropy_with_logits(logit, batch["label"])
        if penalty:
            loss = loss + self.cfg.embedding_l2 * torch.stack(penalty).sum() / logit.shape[0]
        return loss

    @torch.no_grad()
    def predict(self, batch: Batch) -> torch.Tensor:
        """Scaled rating (regression) or probability of a high rating (classification), (B,)."""
        return torch.sigmoid(self(batch)["logit"])


_REGISTRY: dict[str, tuple[type[RecModel], dict[str, Any]]] = {}


def register(name: str, **kwargs: Any) -> Callable[[type[RecModel]], type[RecModel]]:
    """Class decorator: register ``cls(inputs, cfg, **kwargs)`` under ``name``."""

    def deco(cls: type[RecModel]) -> type[RecModel]:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} registered twice")
        _REGISTRY[name] = (cls, kwargs)
        return cls

    return deco


def model_names() -> list[str]:
    """Every registered model name."""
    return sorted(_REGISTRY)


def model_spec(name: str) -> tuple[type[RecModel], dict[str, Any]]:
    """The class and keyword arguments registered under ``name``."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {model_names()}")
    return _REGISTRY[name]


def explanation_source(name: str) -> ExplanationSource:
    """Which explanation vectors the model ``name`` needs (None for none)."""
    cls, kwargs = model_spec(name)
    return kwargs.get("source", cls.explanation_source)


def build_model(name: str, inputs: ModelInputs, cfg: ModelConfig) -> RecModel:
    """Instantiate the model registered under ``name``."""
    cls, kwargs = model_spec(name)
    return cls(inputs, cfg, **kwargs)


def mlp(
    sizes: list[int],
    act: type[nn.Module] = nn.ReLU,
    last_act: bool = False,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with activations (and dropout, when
    ``dropout > 0``) in between."""
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2 or last_act:
            layers.append(act())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
