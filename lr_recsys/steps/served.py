"""Served-text step: LLM text for what the service will return.

After training, each serving user's candidates are ranked with the new model exactly as the
service ranks them (``lr_recsys.serve.scoring``: the candidate generator's order, distilled
vectors online, LLM vectors where explained), and the LLM explains that user's top ``k``. An
LLM embedding can move an item in the ranking, so ranking and explaining repeat (at most
``rounds`` times) until the top ``k`` of every serving user is explained. The explain queue (items
the service returned without text) is drained in the same LLM run. The new explanations are
appended to the Feast pair source (valid from now) and loaded into the online store with
``materialize_incremental``: a running service returns them at once, without a restart.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.data import Prepared

log = logging.getLogger(__name__)

SERVED_REPORT = "served.json"


@dataclass
class ServingState:
    """What the service knows about users (as the features step wrote it to the store)."""

    histories: dict[str, list[str]]  # latest items, oldest first
    rated: dict[str, set[str]]
    popularity: list[str]  # the candidate generator's order
    cap: int  # candidates per user

    def candidates(self, user: str) -> list[str]:
        seen = self.rated.get(user, set())
        return [i for i in self.popularity if i not in seen][: self.cap]


@dataclass
class Explained:
    """LLM explanations gathered by this step, by pair key."""

    pos: dict[str, np.ndarray] = field(default_factory=dict)
    neg: dict[str, np.ndarray] = field(default_factory=dict)
    texts: dict[str, tuple[str, str]] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)  # the store rows to append


def select_users(users: list[str], counts: pd.Series, n: int) -> list[str]:
    """The serving user set: every user when ``n`` is 0, else the ``n`` most active (ties: id)."""
    if n < 0:
        raise ValueError(f"serving_users must be >= 0 (0 = every user), got {n}")
    if n == 0 or n >= len(users):
        return sorted(users)
    order = sorted(users, key=lambda u: (-int(counts.get(u, 0)), u))
    return sorted(order[:n])


def top_k(model, space, distiller, state: ServingState, user: str, k: int, got: Explained,
          reads_explanations: bool) -> list[tuple[str, str]]:  # fmt: skip
    """The user's top ``k`` (pair key, item) as the service would rank them now."""
    from lr_recsys.serve.scoring import pair_keys, score_candidates

    cands = state.candidates(user)
    if not cands:
        return []
    history = state.histories.get(user)
    keys = pair_keys(user, history or [], cands, space.history_len)
    has = np.array([k_ in got.pos for k_ in keys], dtype=bool)
    dim = model.inputs.explanation_dim
    pos = np.stack([got.pos.get(k_, np.zeros(dim, np.float32)) for k_ in keys])
    neg = np.stack([got.neg.get(k_, np.zeros(dim, np.float32)) for k_ in keys])
    scored = score_candidates(model, space, distiller, user, history, cands, pos, neg, has,
                              reads_explanations=reads_explanations)  # fmt: skip
    order = np.argsort(-scored.scores, kind="stable")[:k]
    return [(keys[j], cands[j]) for j in order]


def explain_served(
    prepared_dir: Path, model_dir: Path, store: dict[str, Any], cache_path: Path,
    llm: dict[str, Any] | None = None, users: int = 0, k: int = 10, rounds: int = 10,
    candidate_cap: int = 100, queue_path: Path | None = None, queue_limit: int | None = None,
    variant: str = "attributes", also_models: tuple[Path, ...] = (),
) -> dict[str, Any]:  # fmt: skip
    """Explain the top ``k`` of every serving user and the queued pairs; store them online.

    Args:
        prepared_dir: The ingest step's prepared examples (histories and rated items).
        model_dir: The train step's model artifact (weights, serving bundle, AutoEncoder and
            distilled explainer).
        store: The features step's store fields (``StoreConfig``).
        cache_path: The LLM cache (explanations already generated are not generated again).
        llm: ``LLMConfig`` fields.
        users: Serving users: 0 = every user, N = the N most active.
        k: Items per user that must carry LLM text (the service's default ``k``).
        rounds: Rank-explain iterations at most.
        candidate_cap: The service's candidate generator size (``ServeConfig.candidate_cap``).
        queue_path: The service's explain queue (drained: pairs explained or no longer current
            are removed once stored); None: no queue.
        queue_limit: Queued pairs taken per run (None: all).
        also_models: Model artifacts whose top ``k`` is explained too (a refresh: the champion,
            which keeps serving if the challenger is not promoted; it must share the AutoEncoder).

    Returns:
        Counts: users, pairs explained by the LLM (cache hits and generated), rounds, the
        served coverage after the last round, queue drained / stale / left.
    """
    from lr_recsys.candidates import latest_histories, rated_items
    from lr_recsys.feature_store import append_sources, materialize_incremental, store_config
    from lr_recsys.models.base import explanation_source
    from lr_recsys.models.io import load_model
    from lr_recsys.serve.bundle import ServingBundle
    from lr_recsys.serve.queue import ExplainQueue
    from lr_recsys.serve.scoring import Distiller, padded_history
    from lr_recsys.steps.train import AUTOENCODER, DISTILLER

    if k < 1:
        raise ValueError(f"served-text step: k must be >= 1, got {k}")
    if rounds < 1:
        raise ValueError(f"served-text step: rounds must be >= 1, got {rounds}")
    t0 = time.perf_counter()
    prepared = Prepared.load(prepared_dir)
    model_dir = Path(model_dir)
    model, config = load_model(model_dir)
    model.eval()
    bundle = ServingBundle.load(model_dir)
    distiller = Distiller.load(model_dir / DISTILLER)
    reads = explanation_source(config["model"]) is not None
    if not reads or not (model_dir / AUTOENCODER).exists():
        log.warning("served text: model %s reads no explanation features; nothing to explain",
                    config["model"])  # fmt: skip
        return {"skipped": 1, "seconds": round(time.perf_counter() - t0, 2)}
    encoder, mean, std = _encoder(model_dir / AUTOENCODER)
    state = ServingState(
        {u: h for u, (h, _) in latest_histories(prepared).items()}, rated_items(prepared),
        bundle.popularity, candidate_cap,
    )  # fmt: skip
    counts = prepared.examples[schema.USER_ID].value_counts()
    serving = select_users(list(state.histories), counts, users)
    length = bundle.space.history_len
    rankers = [(model, bundle.space, distiller, reads)]
    for other in also_models:  # same AutoEncoder: the stored vectors mean the same to both
        m, c = load_model(Path(other))
        rankers.append((m.eval(), ServingBundle.load(Path(other)).space,
                        Distiller.load(Path(other) / DISTILLER), explanation_source(c["model"]) is not None))  # fmt: skip
    cfg = store_config(store)
    got = stored_llm(cfg)  # explained by an earlier run: not explained or stored again
    before = set(got.pos)
    llm_stats: dict[str, float] = {}

    def explain(todo: dict[str, tuple[str, str, list[str]]]) -> set[str]:
        """LLM-explain ``todo`` (key -> user, item, history); returns the keys explained."""
        table, stats = _llm_explain(prepared, todo, cache_path, llm, variant)
        for key, value in stats.items():
            llm_stats[key] = llm_stats.get(key, 0) + value
        failed.update(table.loc[table["failed"], schema.PAIR_KEY])  # not asked again this run
        ok = table[~table["failed"]]
        if ok.empty:
            return set()
        p = (encoder.encode(ok[schema.POSITIVE].tolist()) - mean) / std
        n = (encoder.encode(ok[schema.NEGATIVE].tolist()) - mean) / std
        now = pd.Timestamp.now(tz="UTC")
        for j, (key, pos_t, neg_t) in enumerate(
            zip(ok[schema.PAIR_KEY], ok[schema.POSITIVE], ok[schema.NEGATIVE], strict=True)
        ):
            user, item, _ = todo[key]
            got.pos[key], got.neg[key] = p[j].astype(np.float32), n[j].astype(np.float32)
            got.texts[key] = (pos_t, neg_t)
            got.rows.append({
                schema.PAIR_KEY: key, schema.USER_ID: user, schema.ITEM_ID: item,
                schema.EVENT_TIMESTAMP: now, schema.POS_EMB: got.pos[key], schema.NEG_EMB: got.neg[key],
                schema.POSITIVE: pos_t, schema.NEGATIVE: neg_t, schema.EXPLANATION_SOURCE: "llm",
            })  # fmt: skip
        return set(ok[schema.PAIR_KEY])

    # the queue: pairs served without text whose history is still the user's current one
    queue = ExplainQueue(queue_path) if queue_path is not None else None
    queued = queue.peek(queue_limit) if queue is not None else []
    todo: dict[str, tuple[str, str, list[str]]] = {}
    stale: list[str] = []
    for q in queued:
        history = state.histories.get(q.user_id)
        current = history is not None and schema.pair_key(
            q.user_id, padded_history(history, length), q.item_id
        ) == q.pair_key  # fmt: skip
        rated = q.item_id in state.rated.get(q.user_id, set())
        if not current or rated or q.item_id not in bundle.space.item_index:
            stale.append(q.pair_key)
        else:
            todo[q.pair_key] = (q.user_id, q.item_id, history)
    failed: set[str] = set()
    done_rounds = 0
    for _ in range(rounds):
        for user in serving:
            for r_model, r_space, r_dist, r_reads in rankers:
                for key, item in top_k(r_model, r_space, r_dist, state, user, k, got, r_reads):
                    if key not in got.pos:
                        todo[key] = (user, item, state.histories.get(user) or [])
        todo = {key: v for key, v in todo.items() if key not in got.pos and key not in failed}
        if not todo:
            break
        explain(todo)
        done_rounds += 1
        todo = {}
    # coverage as served now: the share of the serving users' top k that carries LLM text
    top = [key for user in serving for key, _ in top_k(model, bundle.space, distiller, state, user, k, got, reads)]  # fmt: skip
    covered = sum(key in got.pos for key in top)
    new_keys = set(got.pos) - before
    appended = {}
    if got.rows:
        rows = pd.DataFrame(got.rows)
        appended = append_sources(cfg, pairs=rows)
        materialize_incremental(cfg, rows[schema.EVENT_TIMESTAMP].max() + pd.Timedelta(seconds=1))
    drained = [q.pair_key for q in queued if q.pair_key in got.pos]
    if queue is not None:
        queue.remove(drained + stale)  # only now: a failure above leaves the queue as it was
    summary = {
        "serving_users": len(serving), "k": k, "rounds": done_rounds,
        "llm_explained": len(new_keys), "served_items": len(top), "served_with_text": covered,
        "served_text_coverage": covered / len(top) if top else 1.0,
        "queue_taken": len(queued), "queue_explained": len(drained), "queue_stale": len(stale),
        "queue_left": len(queue) if queue is not None else 0, "llm_failed_pairs": len(failed),
        "store_rows_appended": int(appended.get(schema.FV_PAIR, 0)),
        "seconds": round(time.perf_counter() - t0, 2),
        **{f"llm_{key}": v for key, v in llm_stats.items()},
    }  # fmt: skip
    log.info("served text: %s", summary)
    return summary


def stored_llm(cfg) -> Explained:
    """The LLM explanations the store's pair source already holds, by pair key."""
    from lr_recsys.feature_store import pair_source

    got = Explained()
    frame = pair_source(cfg, [schema.PAIR_KEY, schema.POS_EMB, schema.NEG_EMB, schema.POSITIVE,
                              schema.NEGATIVE, schema.EXPLANATION_SOURCE])  # fmt: skip
    frame = frame[frame[schema.EXPLANATION_SOURCE] == "llm"].drop_duplicates(schema.PAIR_KEY, keep="last")  # fmt: skip
    for key, p, n, pt, nt in zip(frame[schema.PAIR_KEY], frame[schema.POS_EMB], frame[schema.NEG_EMB],
                                 frame[schema.POSITIVE], frame[schema.NEGATIVE], strict=True):  # fmt: skip
        got.pos[key], got.neg[key] = np.asarray(p, np.float32), np.asarray(n, np.float32)
        got.texts[key] = (pt, nt)
    return got


def _encoder(directory: Path):
    """The model version's AutoEncoder and its standardisation (training statistics)."""
    import json

    from lr_recsys.encoder import ExplanationEncoder
    from lr_recsys.steps.features import STANDARDISE

    if not (Path(directory) / STANDARDISE).exists():
        raise FileNotFoundError(
            f"{directory} has no AutoEncoder with {STANDARDISE}: the served-text step needs a "
            "model trained on explanation features (an 'ae' model such as lr-recsys)"
        )
    stats = json.loads((Path(directory) / STANDARDISE).read_text())
    mean = np.asarray(stats["mean"], dtype=np.float32)
    std = np.asarray(stats["std"], dtype=np.float32)
    return ExplanationEncoder.load(directory), mean, std


def _llm_explain(prepared: Prepared, todo: dict[str, tuple[str, str, list[str]]],
                 cache_path: Path, llm: dict[str, Any] | None, variant: str):  # fmt: skip
    """Explain ``todo``'s pairs with the LLM engine (cached); the table gains ``failed``."""
    from lr_recsys.explain.config import ExplainConfig, LLMConfig
    from lr_recsys.explain.engine import FLAGS, Pair
    from lr_recsys.explain.normalize import FAILED
    from lr_recsys.explain.run import explain_pairs

    cfg = ExplainConfig(data=prepared.config, llm=LLMConfig(**(llm or {})), variant=variant,
                        cache_path=cache_path, progress=False)  # fmt: skip
    pairs = [Pair(key, u, tuple(h), i) for key, (u, i, h) in todo.items()]
    table, s = explain_pairs(cfg, prepared, pairs)
    table["failed"] = table[FLAGS].str.contains(FAILED)
    return table, {"requested_pairs": s.pairs, "cache_hits": s.cache_hits, "generated": s.generated,
                   "failed": s.failed, "seconds": s.seconds}  # fmt: skip
