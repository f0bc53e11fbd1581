"""Incremental refresh: a day of new interactions without redoing the whole dataset.

The refresh pipeline (``pipelines/refresh_pipeline.py``) takes the interactions newer than the
store's watermark (the latest interaction the last run covered), and:

1. ``refresh_ingest``: the last run's examples, re-prepared as of the watermark (identical
   pairs and splits: preparation is deterministic), plus the new interactions as *training*
   examples (histories from the full past). The test split stays the last run's, so the
   promotion gate compares challenger and champion on the same test pairs; the next full run
   re-splits.
2. ``refresh_features``: the LLM explains the budgeted share of the *new* pairs only (the LLM
   cache answers anything already generated; its counts say how much was generated), the
   champion's AutoEncoder embeds them and its distilled explainer gives every other new pair its
   vectors; the rows are appended to the Feast sources (pairs at their rating time for
   point-in-time training reads, user histories valid from now) and ``materialize_incremental``
   loads what is new into the online store; the watermark moves.
3. ``refresh_train``: ``finetune`` (the champion's weights, a few epochs on the current training
   split) or ``retrain`` (the registered model from scratch), features read through Feast.

Then the usual evaluate -> served text (queue drained) -> register + promote steps follow.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data import Prepared, load_tables, prepare
from lr_recsys.lineage import REFRESH_LLM
from lr_recsys.validate import gate, suites

log = logging.getLogger(__name__)

NEW_PAIRS = "new_pairs.json"  # pair keys of the new interactions, next to the prepared data
REFRESH_MODES = ("finetune", "retrain")


def refresh_ingest(data: DataConfig, out_dir: Path, since: int) -> dict[str, Any]:
    """The last run's examples (as of ``since``) plus every later interaction as training data.

    Raises:
        ValueError: ``data.until`` is at or before ``since`` (nothing could be new).
    """
    if data.until is not None and data.until <= since:
        raise ValueError(f"refresh: until={data.until} is not after the watermark {since}")
    tables = load_tables(data)
    gate("raw_interactions", tables.interactions, suites.interactions(data.rating_min, data.rating_max))  # fmt: skip
    old = prepare(tables, data.model_copy(update={"until": since}))
    full = prepare(tables, data)
    ex = full.examples
    new = ex[(ex[schema.TIMESTAMP] > since) & ~ex[schema.PAIR_KEY].isin(set(old.examples[schema.PAIR_KEY]))].copy()  # fmt: skip
    new[schema.SPLIT] = schema.SPLIT_TRAIN
    examples = pd.concat([old.examples, new[old.examples.columns]], ignore_index=True)
    prepared = Prepared(examples, full.items, full.users, full.name, data)
    out_dir = Path(out_dir)
    prepared.save(out_dir)
    (out_dir / NEW_PAIRS).write_text(json.dumps(new[schema.PAIR_KEY].tolist()))
    old_users, old_items = set(old.examples[schema.USER_ID]), set(old.examples[schema.ITEM_ID])
    summary = {
        "since": int(since), "old_examples": len(old.examples), "new_examples": len(new),
        "new_fraction": len(new) / max(len(old.examples), 1),
        "new_users": int((~new[schema.USER_ID].drop_duplicates().isin(old_users)).sum()),
        "new_items": int((~new[schema.ITEM_ID].drop_duplicates().isin(old_items)).sum()),
        "watermark": int(examples[schema.TIMESTAMP].max()),
    }  # fmt: skip
    log.info("refresh ingest: %s", summary)
    return summary


def new_examples(prepared_dir: Path) -> tuple[Prepared, pd.DataFrame]:
    """The prepared data and the rows of its new interactions."""
    prepared = Prepared.load(prepared_dir)
    keys = set(json.loads((Path(prepared_dir) / NEW_PAIRS).read_text()))
    ex = prepared.examples
    return prepared, ex[ex[schema.PAIR_KEY].isin(keys)].drop_duplicates(schema.PAIR_KEY)


def refresh_features(
    prepared_dir: Path, store: dict[str, Any], model_dir: Path, cache_path: Path,
    llm: dict[str, Any] | None = None, llm_pairs: int | None = None, budget_seed: int = 0,
    model_version: int | str | None = None, tracking_uri: str | None = None,
    variant: str = "attributes",
) -> dict[str, Any]:  # fmt: skip
    """Explain (budget), embed and distil the new pairs with the champion's encoders, append
    them and the changed user histories to the Feast sources, materialise incrementally.
    The summary's ``llm_lineage`` (``lr_recsys.lineage.llm_lineage`` + ``budget``) says which LLM
    explained the new pairs; every other value is a number.

    Args:
        prepared_dir: ``refresh_ingest``'s output.
        store: ``StoreConfig`` fields of the store the last run wrote.
        model_dir: The champion's model artifact (AutoEncoder, distilled explainer inside).
        cache_path: The LLM cache.
        llm: ``LLMConfig`` fields.
        llm_pairs: How many new pairs the LLM explains (None: all of them).
        budget_seed: Seed of the budget's order.
        model_version: The FeatureService to apply (default: the registry's next version).
        tracking_uri: The registry (to name the next version).
    """
    from lr_recsys import distill as dist
    from lr_recsys.candidates import latest_histories, rated_items
    from lr_recsys.explain.budget import select_budget
    from lr_recsys.feature_store import (
        add_feature_service,
        append_sources,
        materialize_incremental,
        store_config,
        write_state,
    )
    from lr_recsys.steps.features import pair_frame
    from lr_recsys.steps.served import _encoder, _llm_explain
    from lr_recsys.steps.train import AUTOENCODER, DISTILLER

    t0 = time.perf_counter()
    prepared, new = new_examples(prepared_dir)
    cfg = store_config(store)
    model_dir = Path(model_dir)
    summary: dict[str, Any] = {"new_pairs": len(new)}
    if len(new):
        explain = select_budget(new, llm_pairs, budget_seed)
        todo = {
            k: (u, i, [h for h in hist if h != schema.PAD_ITEM])
            for k, u, i, hist in zip(explain[schema.PAIR_KEY], explain[schema.USER_ID],
                                     explain[schema.ITEM_ID], explain[schema.HISTORY], strict=True)
        }  # fmt: skip
        table, stats = _llm_explain(prepared, todo, cache_path, llm, variant)
        ok = table[~table["failed"]].set_index(schema.PAIR_KEY)
        encoder, mean, std = _encoder(model_dir / AUTOENCODER)
        llm_vec = pd.DataFrame(index=ok.index)
        llm_vec[schema.POS_EMB] = list(((encoder.encode(ok[schema.POSITIVE].tolist()) - mean) / std).astype(np.float32))  # fmt: skip
        llm_vec[schema.NEG_EMB] = list(((encoder.encode(ok[schema.NEGATIVE].tolist()) - mean) / std).astype(np.float32))  # fmt: skip
        distiller, dspace = dist.load_distiller(model_dir / DISTILLER)
        vec = dist.explanation_vectors(new, llm_vec, distiller, dspace, "mixed")
        vec = vec.loc[new[schema.PAIR_KEY]]
        is_llm = (vec[schema.EXPLANATION_SOURCE] == dist.LLM).to_numpy()
        texts = ok.reindex(new[schema.PAIR_KEY])
        rows = pair_frame(
            new, np.stack(vec[schema.POS_EMB].to_numpy()), np.stack(vec[schema.NEG_EMB].to_numpy()),
            texts[schema.POSITIVE].where(is_llm, None).to_numpy(),
            texts[schema.NEGATIVE].where(is_llm, None).to_numpy(), vec[schema.EXPLANATION_SOURCE],
        )  # fmt: skip
        summary.update({
            "llm_pairs": int(is_llm.sum()), "distilled_pairs": int((~is_llm).sum()),
            **{f"llm_{k}": v for k, v in stats.items()},
        })  # fmt: skip
    else:
        rows = None
    from lr_recsys.explain.config import LLMConfig
    from lr_recsys.lineage import llm_lineage

    summary["llm_lineage"] = llm_lineage(LLMConfig(**(llm or {})), variant) | {"budget": {
        "llm_pairs": "all" if llm_pairs is None else llm_pairs, "policy": "even",
        "seed": budget_seed, "explained": summary.get("llm_pairs", 0), "all_pairs": len(new),
    }}  # fmt: skip
    # the users with new interactions: their latest history and rated items, valid from now
    now = pd.Timestamp.now(tz="UTC").floor("s")
    users = set(new[schema.USER_ID])
    latest, rated = latest_histories(prepared), rated_items(prepared)
    histories = pd.DataFrame({
        schema.USER_ID: sorted(users), schema.EVENT_TIMESTAMP: now,
        schema.HISTORY_IDS: [latest[u][0] for u in sorted(users)],
        schema.RATED_IDS: [sorted(rated.get(u, ())) for u in sorted(users)],
    })  # fmt: skip
    appended = append_sources(cfg, pairs=rows, histories=histories)
    if model_version is None:
        from lr_recsys.registry import RegistryConfig, next_version

        model_version = next_version(RegistryConfig(tracking_uri=tracking_uri)) if tracking_uri else 1  # fmt: skip
    add_feature_service(cfg, model_version)
    materialize_incremental(cfg, (now + pd.Timedelta(seconds=1)).to_pydatetime())
    write_state(cfg, int(prepared.examples[schema.TIMESTAMP].max()))
    summary.update({
        "pair_rows_appended": appended[schema.FV_PAIR], "users_updated": appended[schema.FV_USER],
        "model_version": model_version, "seconds": round(time.perf_counter() - t0, 2),
    })  # fmt: skip
    log.info("refresh features: %s", summary)
    return summary


def _refresh_llm(store: dict[str, Any] | None) -> dict[str, Any]:
    """The lineage of the LLM that explained the new pairs, from the features step's artifact
    metadata (a JSON string there; ``{}`` when absent)."""
    raw = (store or {}).get("llm_lineage")
    return json.loads(raw) if isinstance(raw, str) and raw else dict(raw or {})


def refresh_train(
    prepared_dir: Path, store: dict[str, Any], model_dir: Path, out_dir: Path,
    mode: Literal["finetune", "retrain"] = "finetune", task: str = schema.REGRESSION,
    epochs: int = 5, seed: int = 0, tuned_config: Path | str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Fine-tune the champion or retrain its architecture on the refreshed data; writes what the
    evaluate and register steps read (as ``train_evaluate`` does)."""
    from dataclasses import asdict, replace

    from lr_recsys.config import ModelConfig, TrainConfig
    from lr_recsys.evaluate import predict_all, task_metrics
    from lr_recsys.feature_store import open_store, store_config, training_vectors
    from lr_recsys.features import to_tensors
    from lr_recsys.models.io import load_model, save_model
    from lr_recsys.serve.bundle import ServingBundle
    from lr_recsys.steps.train import (
        AUTOENCODER,
        DISTILLER,
        PREDICTIONS,
        RESULTS,
        SUMMARY,
        train_evaluate,
    )
    from lr_recsys.train.loop import seed_everything, train
    from lr_recsys.tuned import configs_for, read_tuned

    if mode not in REFRESH_MODES:
        raise ValueError(f"refresh mode {mode!r}; expected one of {REFRESH_MODES}")
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    champion, config = load_model(model_dir)
    name = config["model"]
    if config["task"] != task:
        raise ValueError(f"the champion was trained for {config['task']!r}, not {task!r}")
    if mode == "retrain":
        ae = model_dir / AUTOENCODER
        dd = model_dir / DISTILLER
        result = train_evaluate(
            prepared_dir, store, out_dir, [name], task, [seed], epochs,
            encoder_dir=ae if ae.exists() else None, tuned_config=tuned_config,
            distiller_dir=dd if dd.exists() else None,
        )  # fmt: skip
        summary = json.loads((out_dir / SUMMARY).read_text())
        summary.update({"mode": mode, REFRESH_LLM: _refresh_llm(store)})
        (out_dir / SUMMARY).write_text(json.dumps(summary))
        return result
    t0 = time.perf_counter()
    prepared = Prepared.load(prepared_dir)
    bundle = ServingBundle.load(model_dir)
    space = bundle.space  # the champion's indices: ids it never saw map to the unknown row
    vectors = None
    if champion.inputs.explanation_dim and store:
        from lr_recsys.models.base import explanation_source

        if explanation_source(name) is not None:
            vectors = training_vectors(
                open_store(store_config(store)), prepared.examples, int(store.get("model_version", 1))
            )  # fmt: skip
    splits = {}
    for s in schema.SPLITS:
        df = prepared.split(s)
        vec = None
        if vectors is not None:
            rows = vectors.loc[df[schema.PAIR_KEY]]
            vec = tuple(np.stack(rows[c].to_numpy()).astype(np.float32) for c in (schema.POS_EMB, schema.NEG_EMB))  # fmt: skip
        splits[s] = to_tensors(df, space, vec)
    _, train_cfg = configs_for(name, task, ModelConfig(), TrainConfig(progress=False), read_tuned(tuned_config))  # fmt: skip
    train_cfg = replace(train_cfg, epochs=epochs, seed=seed, patience=min(train_cfg.patience or epochs, 2))  # fmt: skip
    seed_everything(seed)
    span = prepared.config.rating_max - prepared.config.rating_min
    before = task_metrics(predict_all(champion, splits[schema.SPLIT_VAL]), splits[schema.SPLIT_VAL], task, span)  # fmt: skip
    result = train(champion, splits[schema.SPLIT_TRAIN], splits[schema.SPLIT_VAL], task, train_cfg, span)  # fmt: skip
    test = task_metrics(predict_all(champion, splits[schema.SPLIT_TEST]), splits[schema.SPLIT_TEST], task, span)  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    save_model(champion, name, task, out_dir)
    titles = dict(zip(prepared.items[schema.ITEM_ID], prepared.items[schema.TITLE].astype(str), strict=True))  # fmt: skip
    from lr_recsys.candidates import popularity

    ServingBundle(space, bundle.rating_min, bundle.rating_max, titles, list(popularity(prepared).index)).save(out_dir)  # fmt: skip
    for sub in (AUTOENCODER, DISTILLER):  # the features were made with the champion's encoders
        if (model_dir / sub).exists():
            shutil.copytree(model_dir / sub, out_dir / sub, dirs_exist_ok=True)
    from lr_recsys.lineage import code_version, dataset_fingerprint
    from lr_recsys.report.build import high_threshold

    ex = prepared.split(schema.SPLIT_TEST)
    pd.DataFrame({
        schema.PAIR_KEY: ex[schema.PAIR_KEY].to_numpy(), "prediction": predict_all(champion, splits[schema.SPLIT_TEST]),
        schema.TARGET: ex[schema.TARGET].to_numpy(), schema.LABEL: ex[schema.LABEL].to_numpy(),
    }).to_parquet(out_dir / PREDICTIONS, index=False)  # fmt: skip
    pd.DataFrame([{"model": name, "seed": seed, **test}]).to_csv(out_dir / RESULTS, index=False)
    summary = {
        "model": name, "task": task, "seeds": [seed], "baselines": [], "mode": mode,
        "per_seed": {k: [v] for k, v in test.items()}, "mean": test,
        "test_pair_keys": ex[schema.PAIR_KEY].tolist(), "best_seed": seed,
        "configs": {name: {"model": asdict(champion.cfg), "train": asdict(train_cfg)}},
        "best_epoch": result.best_epoch, "val_before": before,
        "seconds": round(time.perf_counter() - t0, 2), "history": result.history,
        "dataset": dataset_fingerprint(prepared.examples), "code": code_version(),
        "high_threshold": high_threshold(prepared),
        REFRESH_LLM: _refresh_llm(store),  # the LLM that explained the new pairs
    }  # fmt: skip
    (out_dir / SUMMARY).write_text(json.dumps(summary))
    return {k: v for k, v in summary.items() if k not in ("test_pair_keys", "history")}
