"""Distill step: the distilled explainer learns the LLM pairs' embeddings and gives every other
pair (rated examples and serving candidates) its vectors; fidelity and the residual probe are
measured on held-out LLM pairs (validation split, never test)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lr_recsys import schema
from lr_recsys.data import Prepared
from lr_recsys.steps.data import SERVING_PAIRS
from lr_recsys.steps.features import EMBEDDINGS, pair_frame
from lr_recsys.validate import gate, suites

log = logging.getLogger(__name__)

DISTILL_REPORT = "distill.json"


def _llm_vectors(path: Path) -> pd.DataFrame:
    llm = pd.read_parquet(path)
    return llm.drop_duplicates(schema.PAIR_KEY).set_index(schema.PAIR_KEY)


def distill(
    prepared_dir: Path, explanations_dir: Path, llm_embeddings_dir: Path, distiller_dir: Path,
    embeddings_dir: Path, probe_tasks: tuple[str, ...] = (schema.REGRESSION,),
    tuned_config: Path | str | None = None, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Train the distilled explainer on the LLM pairs of the training split, write every pair's
    vectors with ``explanation_source`` (``llm`` | ``distilled``; texts only for ``llm``) to
    ``embeddings_dir/embeddings.parquet`` and the explainer to ``distiller_dir``.

    Args:
        prepared_dir: The ingest step's prepared examples.
        explanations_dir: The explain step's artifact (its serving pairs are distilled too).
        llm_embeddings_dir: The encode step's LLM-pair embeddings.
        distiller_dir: Where the explainer is saved (``lr_recsys.distill.save_distiller``).
        embeddings_dir: Where every pair's embeddings go.
        probe_tasks: Tasks of the residual probe (empty: no probe).
        tuned_config: Hyperparameters of the probe's twin (``lr-recsys tune`` TOML).
        seed: Seed of the explainer and the probe.
    """
    from lr_recsys import distill as dist
    from lr_recsys.features import FeatureSpace
    from lr_recsys.train.experiment import ExperimentData, attach_item_vectors

    prepared = Prepared.load(prepared_dir)
    llm = _llm_vectors(Path(llm_embeddings_dir) / EMBEDDINGS)
    space = FeatureSpace.build(prepared)
    matrix = attach_item_vectors(ExperimentData(prepared, space))
    ex = prepared.examples.drop_duplicates(schema.PAIR_KEY)
    train = ex[(ex[schema.SPLIT] == schema.SPLIT_TRAIN) & ex[schema.PAIR_KEY].isin(llm.index)]
    val = ex[(ex[schema.SPLIT] == schema.SPLIT_VAL) & ex[schema.PAIR_KEY].isin(llm.index)]
    model, metrics = dist.fit_distiller(
        train, llm, space, matrix, dist.DistillConfig(seed=seed), heldout=val
    )
    serving_path = Path(explanations_dir) / SERVING_PAIRS
    rows = ex[[schema.PAIR_KEY, schema.USER_ID, schema.ITEM_ID, schema.HISTORY, schema.TIMESTAMP]]
    if serving_path.exists():
        serving = pd.read_parquet(serving_path)
        serving[schema.HISTORY] = serving[schema.HISTORY].map(list)
        rows = pd.concat([rows, serving[rows.columns]], ignore_index=True)
    rows = rows.drop_duplicates(schema.PAIR_KEY).reset_index(drop=True)
    vec = dist.explanation_vectors(rows, llm, model, space, "mixed").loc[rows[schema.PAIR_KEY]]
    is_llm = (vec[schema.EXPLANATION_SOURCE] == dist.LLM).to_numpy()
    texts = llm.reindex(rows[schema.PAIR_KEY])
    positive = texts[schema.POSITIVE].where(is_llm, None).to_numpy()
    negative = texts[schema.NEGATIVE].where(is_llm, None).to_numpy()
    pos = np.stack(vec[schema.POS_EMB].to_numpy())
    neg = np.stack(vec[schema.NEG_EMB].to_numpy())
    gate("distilled_embeddings", suites.embedding_frame(np.concatenate([pos, neg])),
         suites.embeddings(pos.shape[1]))  # fmt: skip
    frame = pair_frame(rows, pos, neg, positive, negative, vec[schema.EXPLANATION_SOURCE])
    Path(embeddings_dir).mkdir(parents=True, exist_ok=True)
    frame.to_parquet(Path(embeddings_dir) / EMBEDDINGS, index=False)
    dist.save_distiller(model, space, Path(distiller_dir))
    summary: dict[str, Any] = {
        "pairs": len(frame), "llm_pairs": int(is_llm.sum()), "distilled_pairs": int((~is_llm).sum()),
        **{f"fidelity_{k}": v for k, v in metrics.items() if isinstance(v, int | float)},
    }  # fmt: skip
    summary.update(_probe(prepared, llm, probe_tasks, tuned_config, seed))
    (Path(distiller_dir) / DISTILL_REPORT).write_text(json.dumps(summary, indent=2))
    _carry_lineage(Path(explanations_dir), Path(distiller_dir))
    return summary


def _carry_lineage(explanations_dir: Path, distiller_dir: Path) -> None:
    """Copy the explain step's LLM lineage and quality report into the distiller, which the
    model artifact embeds: registration reads where the model's explanations came from there."""
    import shutil

    from lr_recsys.lineage import LINEAGE
    from lr_recsys.steps.data import QUALITY

    for name in (LINEAGE, QUALITY):
        if (explanations_dir / name).exists():
            shutil.copyfile(explanations_dir / name, distiller_dir / name)


def _probe(prepared: Prepared, llm: pd.DataFrame, tasks, tuned_config, seed: int) -> dict:
    """Residual probe per task on the validation split's LLM pairs (flattened for KFP metrics)."""
    from lr_recsys.config import ModelConfig, TrainConfig
    from lr_recsys.explain.quality import residual_probe
    from lr_recsys.tuned import configs_for, read_tuned

    out: dict[str, Any] = {}
    tuned = read_tuned(tuned_config)
    for task in tasks:
        model_cfg, train_cfg = configs_for(
            "lr-recsys-noexp", task, ModelConfig(), TrainConfig(progress=False), tuned
        )
        res = residual_probe(prepared, llm, task, model_cfg, train_cfg, seed=seed)
        for k, v in res.items():
            if isinstance(v, int | float):
                out[f"probe_{task}_{k}"] = v
            elif isinstance(v, list | tuple) and len(v) == 2:
                out[f"probe_{task}_{k}_low"], out[f"probe_{task}_{k}_high"] = v
    return out
