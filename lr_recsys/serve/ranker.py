"""Online ranking (paper Sec. 6): request-time features from the Feast online store, the
registry's ``champion`` model, one batched forward pass over all candidates, explanations and
attention for every item.

Documented behaviours:

* **Candidate generator** (no ``candidate_item_ids``): the catalogue items the user has not
  rated (``rated_item_ids`` from the online store), most interactions first, at most
  ``candidate_cap``.
* **Fallback**: a candidate whose (user, item) pair has no precomputed explanation is scored with
  all-zero explanation vectors — the training mean, since embeddings are standardised with
  training statistics — and marked ``source: "fallback"``; fallbacks are counted.
* **Unknown user** (no online features and not in the training index): a cold-start answer in
  candidate-generator order (model scores still reported), flagged ``cold_start: true``.
* **Reload**: ``reload_if_changed`` swaps in the version the alias points at; a request holds
  the model it started with, so a swap never mixes two versions in one answer.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from lr_recsys import schema
from lr_recsys.feature_store import StoreConfig, open_store
from lr_recsys.models.base import RecModel
from lr_recsys.models.lr_recsys_net import token_importance
from lr_recsys.registry import (
    CHAMPION,
    TAG_FEATURE_SERVICE,
    RegistryConfig,
    alias_version,
    download_alias,
)
from lr_recsys.serve.api import Attention, Explanation, RankedItem, RankResponse
from lr_recsys.serve.bundle import ServingBundle

USER_FEATURES = [f"{schema.FV_USER}:{schema.HISTORY_IDS}", f"{schema.FV_USER}:{schema.RATED_IDS}"]
PAIR_FEATURES = [
    f"{schema.FV_PAIR}:{name}"
    for name in (
        schema.POS_EMB,
        schema.NEG_EMB,
        schema.POSITIVE,
        schema.NEGATIVE,
        schema.EXPLANATION_SOURCE,
    )
]
TOKENS = ("pos", "neg", "user", "item", "seq", "context")  # LR-Recsys input token order


class ServeConfig(BaseModel):
    """Ranking service settings (embedded defaults; loopback only)."""

    model_config = ConfigDict(extra="forbid")

    registry: RegistryConfig = RegistryConfig()
    alias: str = CHAMPION
    store: StoreConfig = StoreConfig()
    model_cache: Path | None = None  # where model versions are downloaded (a temp dir if unset)
    candidate_cap: int = 100  # generator: at most this many unrated items
    poll_s: float = 0.0  # > 0: check the alias every poll_s seconds; 0: only on /admin/reload
    host: str = "127.0.0.1"
    port: int = 8000


class UnknownItems(ValueError):
    """Candidate ids that are not in the model's catalogue."""

    def __init__(self, items: list[str]) -> None:
        super().__init__(f"unknown item ids (not in the model's catalogue): {items}")
        self.items = items


@dataclass
class LoadedModel:
    version: str
    name: str
    task: str
    model: RecModel
    bundle: ServingBundle


class Ranker:
    """Ranks candidates for a user with the alias's model and the online store's features."""

    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.store = open_store(cfg.store)
        self._cache = Path(cfg.model_cache or tempfile.mkdtemp(prefix="lr-recsys-models-"))
        self._lock = threading.Lock()
        self.current: LoadedModel | None = None
        self.stats: Counter[str] = Counter()

    def load(self) -> LoadedModel:
        """Download and load the version the alias points at now."""
        from lr_recsys.models.io import load_model

        version, directory, tags = download_alias(self.cfg.registry, self.cfg.alias, self._cache)
        self._check_feature_service(version, tags.get(TAG_FEATURE_SERVICE))
        bundle = ServingBundle.load(directory)
        model, config = load_model(directory)
        model.eval()
        loaded = LoadedModel(version, config["model"], config["task"], model, bundle)
        self.current = loaded  # one reference swap: requests in flight keep the old model
        return loaded

    def _check_feature_service(self, version: str, name: str | None) -> None:
        """The version's FeatureService (tagged at registration) must exist in this store and
        serve every feature the ranker reads; versions registered without one are not checked."""
        if name is None:
            return
        self.store.refresh_registry()  # the pipeline may have applied it after we opened the store
        try:
            service = self.store.get_feature_service(name)
        except Exception as exc:  # noqa: BLE001 - Feast raises FeatureServiceNotFoundException
            raise LookupError(
                f"model v{version} reads feature service {name!r}, which the feature store at "
                f"{self.cfg.store.repo_dir} does not have: serve the store the pipeline registered"
            ) from exc
        served = {
            f"{p.name}:{f.name}" for p in service.feature_view_projections for f in p.features
        }
        missing = sorted(set(USER_FEATURES + PAIR_FEATURES) - served)
        if missing:
            raise LookupError(f"feature service {name!r} lacks {missing}")

    def reload_if_changed(self) -> tuple[str, bool]:
        """Load the alias's version if it differs from the one serving; (version, changed)."""
        with self._lock:
            now = alias_version(self.cfg.registry, self.cfg.alias)
            if self.current is not None and now == self.current.version:
                return now, False
            loaded = self.load()
            self.stats["reloads"] += 1
            return loaded.version, True

    def _user_features(self, user_id: str) -> tuple[list[str] | None, set[str] | None]:
        got = self.store.get_online_features(
            features=USER_FEATURES, entity_rows=[{schema.USER_ID: user_id}]
        ).to_dict()
        history, rated = got[schema.HISTORY_IDS][0], got[schema.RATED_IDS][0]
        return (list(history) if history is not None else None), (
            set(rated) if rated is not None else None
        )

    def rank(
        self, user_id: str, candidate_ids: list[str] | None = None, k: int = 10,
        explain: bool = True,
    ) -> RankResponse:  # fmt: skip
        """Score every candidate in one forward pass and return the top ``k``.

        Raises:
            RuntimeError: no model is loaded yet.
            UnknownItems: candidate ids outside the model's catalogue.
            ValueError: duplicate candidate ids or ``k`` below 1.
        """
        m = self.current
        if m is None:
            raise RuntimeError("no model loaded yet")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        space = m.bundle.space
        if candidate_ids is not None:
            unknown = [i for i in candidate_ids if i not in space.item_index]
            if unknown:
                raise UnknownItems(unknown)
            dup = sorted(i for i, n in Counter(candidate_ids).items() if n > 1)
            if dup:
                raise ValueError(f"duplicate candidate item ids: {dup}")
        t0 = time.perf_counter()
        history, rated = self._user_features(user_id)
        cold = history is None and user_id not in space.user_index
        source = "request" if candidate_ids is not None else "generator"
        if candidate_ids is None:
            seen = rated or set()
            candidate_ids = [i for i in m.bundle.popularity if i not in seen][
                : self.cfg.candidate_cap
            ]
        rows = [{schema.USER_ID: user_id, schema.ITEM_ID: i} for i in candidate_ids]
        if not rows:  # the user has rated every catalogue item
            return RankResponse(
                model_version=m.version, model=m.name, user_id=user_id, cold_start=cold,
                candidates=source, fallbacks=0, items=[], timings_ms={"total": 0.0},
            )  # fmt: skip
        pairs = self.store.get_online_features(features=PAIR_FEATURES, entity_rows=rows).to_dict()
        t1 = time.perf_counter()
        scores, attention, have = self._score(m, user_id, history or [], candidate_ids, pairs)
        t2 = time.perf_counter()
        order = np.arange(len(candidate_ids)) if cold else np.argsort(-scores, kind="stable")
        items = [self._item(m, candidate_ids[j], scores[j], attention, j, have[j], pairs, explain)
                 for j in order[:k]]  # fmt: skip
        fallbacks = int((~have).sum())
        self.stats.update(requests=1, fallbacks=fallbacks, cold_starts=int(cold))
        t3 = time.perf_counter()
        return RankResponse(
            model_version=m.version, model=m.name, user_id=user_id, cold_start=cold,
            candidates=source,
            fallbacks=fallbacks, items=items,
            timings_ms={"features": 1e3 * (t1 - t0), "model": 1e3 * (t2 - t1), "total": 1e3 * (t3 - t0)},
        )  # fmt: skip

    def _score(self, m: LoadedModel, user_id, history, candidate_ids, pairs):
        space, n = m.bundle.space, len(candidate_ids)
        dim = m.model.inputs.explanation_dim
        have = np.array([v is not None for v in pairs[schema.POS_EMB]], dtype=bool)
        pos = np.zeros((n, dim), dtype=np.float32)  # fallback: the training mean
        neg = np.zeros((n, dim), dtype=np.float32)
        for j in np.flatnonzero(have):
            pos[j], neg[j] = pairs[schema.POS_EMB][j], pairs[schema.NEG_EMB][j]
        hist = [schema.PAD_ITEM] * space.history_len + list(history)
        hist_idx = [space.item_index.get(i, 0) for i in hist[-space.history_len :]]
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
            out = m.model(batch)
        scores = torch.sigmoid(out["logit"]).numpy()  # (N,)
        attention = token_importance(out["attention"]).numpy() if "attention" in out else None
        return scores, attention, have

    def _item(self, m, item_id, score, attention, j, have, pairs, explain) -> RankedItem:
        b = m.bundle
        rating = b.rating_min + float(score) * (b.rating_max - b.rating_min)
        att = None
        if attention is not None:
            names = TOKENS if attention.shape[1] == 6 else ("pos", *TOKENS[2:])
            values = dict(zip(names, (float(v) for v in attention[j]), strict=True))
            att = Attention(**{"neg": None, **values})
        expl = None
        if explain:
            expl = Explanation(
                positive=pairs[schema.POSITIVE][j] if have else None,
                negative=pairs[schema.NEGATIVE][j] if have else None,
                source=(pairs[schema.EXPLANATION_SOURCE][j] or "llm") if have else "fallback",
            )
        return RankedItem(
            item_id=item_id, title=b.titles.get(item_id, ""), score=float(score),
            predicted_rating=rating if m.task == schema.REGRESSION else None,
            explanation=expl, attention=att,
        )  # fmt: skip
