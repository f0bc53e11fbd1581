"""Online ranking (paper Sec. 6): request-time features from the Feast online store, the
registry's ``champion`` model, one batched forward pass over all candidates, explanations and
attention for every item.

Documented behaviours:

* **Candidate generator** (no ``candidate_item_ids``): the catalogue items the user has not
  rated (``rated_item_ids`` from the online store), most interactions first, at most
  ``candidate_cap``.
* **Explanation vectors** (``lr_recsys.serve.scoring``): the LLM's embedding where the online
  store holds one for this exact (user, current history, candidate) pair (``source: "llm"``,
  texts set); otherwise the model version's distilled explainer computes them at request time
  from the item-text vectors, the history and the user's context, as training did for distilled
  pairs (``source: "distilled"``, texts null). ``fallback`` (all-zero vectors = the training
  mean) remains only where nothing can be distilled, with the reason; fallbacks are counted.
* **Explain queue**: every returned item without LLM text is appended to the durable explain
  queue (``lr_recsys.serve.queue``); the next pipeline run explains it.
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
from pydantic import BaseModel, ConfigDict, Field

from lr_recsys import schema
from lr_recsys.distill import LLM
from lr_recsys.feature_store import StoreConfig, open_store
from lr_recsys.models.base import RecModel, explanation_source
from lr_recsys.registry import (
    CHAMPION,
    TAG_FEATURE_SERVICE,
    RegistryConfig,
    alias_version,
    download_alias,
)
from lr_recsys.serve.api import Attention, Explanation, RankedItem, RankResponse
from lr_recsys.serve.bundle import ServingBundle
from lr_recsys.serve.queue import ExplainQueue, QueuedPair, QueueWriter
from lr_recsys.serve.scoring import DISTILLED, FALLBACK, Distiller, pair_keys, score_candidates

USER_FEATURES = [f"{schema.FV_USER}:{schema.HISTORY_IDS}", f"{schema.FV_USER}:{schema.RATED_IDS}"]
PAIR_FEATURES = [
    f"{schema.FV_PAIR}:{name}"
    for name in (
        schema.POS_EMB,
        schema.NEG_EMB,
        schema.POSITIVE,
        schema.NEGATIVE,
        schema.EXPLANATION_SOURCE,
        schema.PAIR_KEY,
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
    # returned items without LLM text are queued here for the next pipeline run (None: off)
    explain_queue: Path | None = Path("runs/explain_queue.sqlite")
    explain_queue_max: int = Field(default=10_000, ge=1)  # distinct pairs the queue holds
    # /admin/* need "Authorization: Bearer <the value of this environment variable>"; the
    # variable unset or empty: the admin routes are off (403)
    admin_token_env: str = Field(default="LR_RECSYS_ADMIN_TOKEN", min_length=1)
    # admission control (Ray Serve, per replica / per proxy): at most max_ongoing_requests run in
    # a replica, at most max_queued_requests wait for one; beyond that an immediate 503 with
    # Retry-After: retry_after_s (sized from benchmarks/serve_load.py; -1: unbounded queue; Ray
    # refuses 0 when build_app sets the options)
    max_ongoing_requests: int = Field(default=2, ge=1)
    max_queued_requests: int = Field(default=1, ge=-1)
    retry_after_s: float = Field(default=1.0, ge=0)


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
    distiller: Distiller | None = None  # computes unexplained candidates' vectors online

    @property
    def reads_explanations(self) -> bool:
        return explanation_source(self.name) is not None


class Ranker:
    """Ranks candidates for a user with the alias's model and the online store's features."""

    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.store = open_store(cfg.store)
        self._cache = Path(cfg.model_cache or tempfile.mkdtemp(prefix="lr-recsys-models-"))
        self._lock = threading.Lock()
        self.current: LoadedModel | None = None
        self.stats: Counter[str] = Counter()
        self.queue: QueueWriter | None = None
        if cfg.explain_queue is not None:
            self.queue = QueueWriter(ExplainQueue(cfg.explain_queue, cfg.explain_queue_max))

    def load(self) -> LoadedModel:
        """Download and load the version the alias points at now."""
        from lr_recsys.models.io import load_model

        version, directory, tags = download_alias(self.cfg.registry, self.cfg.alias, self._cache)
        self._check_feature_service(version, tags.get(TAG_FEATURE_SERVICE))
        bundle = ServingBundle.load(directory)
        from lr_recsys.steps.train import DISTILLER

        model, config = load_model(directory)
        model.eval()
        distiller = Distiller.load(directory / DISTILLER)
        loaded = LoadedModel(version, config["model"], config["task"], model, bundle, distiller)
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
        keys = pair_keys(user_id, history or [], candidate_ids, m.bundle.space.history_len)
        has_llm, pos, neg = self._llm_vectors(m, keys, pairs)
        scored = score_candidates(
            m.model, space, m.distiller, user_id, history, candidate_ids, pos, neg, has_llm,
            reads_explanations=m.reads_explanations,
        )  # fmt: skip
        t2 = time.perf_counter()
        scores = scored.scores
        order = np.arange(len(candidate_ids)) if cold else np.argsort(-scores, kind="stable")
        top = order[:k]
        items = [self._item(m, candidate_ids[j], j, scored, pairs, explain) for j in top]
        fallbacks = int((scored.source == FALLBACK).sum())
        distilled = int((scored.source == DISTILLED).sum())
        if self.queue is not None and history is not None:  # served without text: explain next run
            self.queue.offer([QueuedPair(keys[j], user_id, tuple(history), candidate_ids[j])
                              for j in top if scored.source[j] == DISTILLED])  # fmt: skip
        self.stats.update(requests=1, fallbacks=fallbacks, distilled=distilled,
                          cold_starts=int(cold))  # fmt: skip
        t3 = time.perf_counter()
        return RankResponse(
            model_version=m.version, model=m.name, user_id=user_id, cold_start=cold,
            candidates=source, fallbacks=fallbacks, distilled=distilled, items=items,
            timings_ms={"features": 1e3 * (t1 - t0), "model": 1e3 * (t2 - t1), "total": 1e3 * (t3 - t0)},
        )  # fmt: skip

    @staticmethod
    def _llm_vectors(m: LoadedModel, keys: list[str], pairs: dict) -> tuple[np.ndarray, ...]:
        """The store's LLM embeddings that explain exactly these pairs (user, *current* history,
        candidate): a row written for an older history explains a different pair."""
        n, dim = len(keys), m.model.inputs.explanation_dim
        has = np.array([
            pairs[schema.EXPLANATION_SOURCE][j] == LLM and pairs[schema.PAIR_KEY][j] == keys[j]
            and pairs[schema.POS_EMB][j] is not None for j in range(n)
        ], dtype=bool)  # fmt: skip
        pos = np.zeros((n, dim), dtype=np.float32)
        neg = np.zeros((n, dim), dtype=np.float32)
        for j in np.flatnonzero(has):
            pos[j], neg[j] = pairs[schema.POS_EMB][j], pairs[schema.NEG_EMB][j]
        return has, pos, neg

    def _item(self, m, item_id, j, scored, pairs, explain) -> RankedItem:
        b = m.bundle
        score = float(scored.scores[j])
        rating = b.rating_min + score * (b.rating_max - b.rating_min)
        att = None
        if scored.attention is not None:
            names = TOKENS if scored.attention.shape[1] == 6 else ("pos", *TOKENS[2:])
            values = dict(zip(names, (float(v) for v in scored.attention[j]), strict=True))
            att = Attention(**{"neg": None, **values})
        expl = None
        if explain:
            src = str(scored.source[j])
            llm = src == LLM  # texts only for the pair they were written for
            expl = Explanation(
                positive=pairs[schema.POSITIVE][j] if llm else None,
                negative=pairs[schema.NEGATIVE][j] if llm else None,
                source=src, reason=scored.reason if src == FALLBACK else None,
            )  # fmt: skip
        return RankedItem(
            item_id=item_id, title=b.titles.get(item_id, ""), score=score,
            predicted_rating=rating if m.task == schema.REGRESSION else None,
            explanation=expl, attention=att,
        )  # fmt: skip

    def close(self) -> None:
        """Flush the explain queue's writer."""
        if self.queue is not None:
            self.queue.close()
