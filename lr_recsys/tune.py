"""``lr-recsys tune``: hyperparameter search per model and task on Ray Tune.

Each trial trains one model on the training split and reports its validation metric after every
epoch; ASHA (asynchronous successive halving) stops the weak trials early, and the loop's own
early stopping ends a trial whose validation score stopped improving. The test split is never
read. The best trial (best validation score at any epoch) is written to the tuned-config TOML
(``lr_recsys.tuned``) that ``compare`` and the pipeline read.

Search space (``SEARCH_SPACE``; the same for every neural model):

========================  =============================================  ======================
field                     distribution                                   why
========================  =============================================  ======================
``train.lr``              log-uniform [1e-4, 1e-2]                       paper default 1e-2 is
                                                                         the upper end
``train.weight_decay``    log-uniform [1e-7, 1e-3]                       L2 on every parameter
``train.batch_size``      choice {128, 256, 512, 1024}                   paper 128
``model.dropout``         uniform [0, 0.5]                               embeddings/tokens, MLP
``model.embed_dim``       choice {8, 16, 32}                             paper 8
``model.embedding_l2``    log-uniform [1e-6, 1e-1]                       L2 on the embedding
                                                                         rows a batch uses
========================  =============================================  ======================

Restartable: the Ray Tune experiment lives under ``storage/<dataset>-<model>-<task>``; running
the same command again restores it (finished trials are kept, unfinished ones resume) unless
``fresh`` is set. A Ray cluster is joined through ``$RAY_ADDRESS`` unchanged.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lr_recsys import schema
from lr_recsys.config import ModelConfig, TrainConfig
from lr_recsys.evaluate import primary_metric

log = logging.getLogger(__name__)

MODEL_KEYS = ("dropout", "embed_dim", "embedding_l2")
TRAIN_KEYS = ("lr", "weight_decay", "batch_size")


def search_space() -> dict[str, Any]:
    """The documented search space as Ray Tune distributions."""
    from ray import tune

    return {
        "lr": tune.loguniform(1e-4, 1e-2),
        "weight_decay": tune.loguniform(1e-7, 1e-3),
        "batch_size": tune.choice([128, 256, 512, 1024]),
        "dropout": tune.uniform(0.0, 0.5),
        "embed_dim": tune.choice([8, 16, 32]),
        "embedding_l2": tune.loguniform(1e-6, 1e-1),
    }


def apply_trial(
    config: dict[str, Any], model_cfg: ModelConfig, train_cfg: TrainConfig
) -> tuple[ModelConfig, TrainConfig]:
    """A trial's sampled values applied to the base configs."""
    unknown = sorted(set(config) - set(MODEL_KEYS) - set(TRAIN_KEYS))
    if unknown:
        raise ValueError(f"trial config has unknown key(s) {unknown}")
    model = {k: _native(config[k]) for k in MODEL_KEYS if k in config}
    train = {k: _native(config[k]) for k in TRAIN_KEYS if k in config}
    return replace(model_cfg, **model), replace(train_cfg, **train)


def _native(v: Any) -> Any:
    """numpy scalars (Ray's samplers) -> Python numbers (dataclasses, TOML)."""
    return v.item() if hasattr(v, "item") else v


@dataclass
class TuneSettings:
    """One tuning job: which model and task, how many trials, how long."""

    model: str
    task: str
    trials: int = 16
    max_epochs: int = 30  # ASHA's max_t; early stopping usually ends trials sooner
    grace_epochs: int = 2  # ASHA: no trial is stopped before this many epochs
    reduction_factor: int = 3
    concurrency: int | None = None  # parallel trials (default: the cluster's CPUs)
    time_budget_s: float | None = None  # stop starting/continuing trials after this long
    seed: int = 0  # search seed and training seed
    storage: Path = Path("runs/tune")
    fresh: bool = False


def _trial(config: dict[str, Any], data, name: str, task: str, base: tuple) -> None:
    """One Ray Tune trial: train with the sampled values, report validation after each epoch."""
    from ray import tune

    from lr_recsys.train.experiment import fit_model

    model_cfg, train_cfg = apply_trial(config, *base)
    metric, _ = primary_metric(task)

    def report(row: dict[str, float]) -> None:
        val = row.get(f"val_{metric}")
        if val is None or not math.isfinite(val):
            val = math.inf if metric == "rmse" else 0.0  # a diverged epoch scores worst
        tune.report({f"val_{metric}": val, "epoch": row["epoch"], "train_loss": row["train_loss"]})

    fit_model(name, task, data, model_cfg, train_cfg, on_epoch=report)


def run_tune(settings: TuneSettings, data, model_cfg: ModelConfig, train_cfg: TrainConfig,
             dataset: str) -> dict[str, Any]:  # fmt: skip
    """Run (or resume) the search for one model and task; return its tuned-config entry.

    Args:
        settings: What to tune and the budget.
        data: ``ExperimentData`` with the tensors the model needs (training + validation used).
        model_cfg: Base model config (fields outside the search space keep these values).
        train_cfg: Base training config (``patience`` applies inside every trial).
        dataset: Dataset name, for the experiment directory.

    Returns:
        ``{"model": {...}, "train": {...}, "val_<metric>": ..., "best_epoch": ..., ...}``.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    from lr_recsys.models import model_names, model_spec
    from lr_recsys.raycluster import ensure_ray

    if settings.model not in model_names():
        raise ValueError(f"unknown model {settings.model!r}; available: {model_names()}")
    if getattr(model_spec(settings.model)[0], "closed_form", False):
        raise ValueError(
            f"model {settings.model!r} is fitted in closed form and selects its shrinkage on the "
            "validation split itself; there is nothing to tune"
        )
    if settings.task not in schema.TASKS:
        raise ValueError(f"unknown task {settings.task!r}; expected one of {schema.TASKS}")
    if settings.trials < 1 or settings.max_epochs < 1:
        raise ValueError(
            f"tune needs trials >= 1 and max_epochs >= 1, got {settings.trials}, {settings.max_epochs}"
        )
    metric, higher = primary_metric(settings.task)
    key, mode = f"val_{metric}", ("max" if higher else "min")
    started = ensure_ray()
    try:
        base_train = replace(train_cfg, epochs=settings.max_epochs, seed=settings.seed,
                             progress=False, num_threads=1)  # fmt: skip
        trainable = tune.with_resources(
            tune.with_parameters(
                _trial, data=data, name=settings.model, task=settings.task,
                base=(model_cfg, base_train),
            ),
            {"cpu": 1},
        )  # fmt: skip
        storage = Path(settings.storage).resolve()
        name = f"{dataset}-{settings.model}-{settings.task}"
        path = storage / name
        t0 = time.perf_counter()
        if not settings.fresh and tune.Tuner.can_restore(str(path)):
            log.info("tune: resuming %s (finished trials are kept)", path)
            tuner = tune.Tuner.restore(str(path), trainable, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=search_space(),
                tune_config=tune.TuneConfig(
                    metric=key, mode=mode, num_samples=settings.trials,
                    scheduler=ASHAScheduler(
                        time_attr="training_iteration", max_t=settings.max_epochs,
                        grace_period=settings.grace_epochs, reduction_factor=settings.reduction_factor,
                    ),
                    search_alg=BasicVariantGenerator(random_state=settings.seed),
                    max_concurrent_trials=settings.concurrency,
                    time_budget_s=settings.time_budget_s,
                ),
                run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=1),
            )  # fmt: skip
        results = tuner.fit()
        seconds = time.perf_counter() - t0
    finally:
        if started:
            import ray

            ray.shutdown()
    return summarise(results, settings, key, mode, seconds)


def summarise(results, settings: TuneSettings, key: str, mode: str, seconds: float) -> dict:
    """The tuned-config entry of the best trial (best validation score at any epoch)."""
    finished = [r for r in results if r.error is None and r.metrics_dataframe is not None]
    if not finished:
        errors = [str(r.error) for r in results if r.error is not None][:3]
        raise RuntimeError(f"tune {settings.model}/{settings.task}: no trial finished; {errors}")
    best = results.get_best_result(metric=key, mode=mode, scope="all")
    curve = best.metrics_dataframe
    idx = curve[key].idxmax() if mode == "max" else curve[key].idxmin()
    model_cfg, train_cfg = apply_trial(best.config, ModelConfig(), TrainConfig())
    stopped_early = sum(len(r.metrics_dataframe) < settings.max_epochs for r in finished)
    return {
        key: float(curve.loc[idx, key]),
        "best_epoch": int(curve.loc[idx, "epoch"]),
        "trials": len(finished),
        "trials_stopped_early": int(stopped_early),
        "search": "random + ASHA",
        "seconds": round(seconds, 1),
        "model": {k: getattr(model_cfg, k) for k in MODEL_KEYS},
        "train": {k: getattr(train_cfg, k) for k in TRAIN_KEYS},
    }


def report(tuned: dict[str, dict[str, dict[str, Any]]]) -> str:
    """A markdown table of a tuned config (what ``lr-recsys tune`` prints at the end)."""
    lines = [
        "| model | task | validation | best epoch | trials (stopped early) | seconds | "
        "lr | weight decay | batch | dropout | embed dim | embedding L2 |",
        "|" + "---|" * 12,
    ]
    for name in sorted(tuned):
        for task, e in sorted(tuned[name].items()):
            val = next((f"{k[4:]} {v:.4f}" for k, v in e.items() if k.startswith("val_")), "-")
            m, t = e.get("model", {}), e.get("train", {})
            lines.append(
                f"| {name} | {task} | {val} | {e.get('best_epoch', '-')} | "
                f"{e.get('trials', '-')} ({e.get('trials_stopped_early', '-')}) | "
                f"{e.get('seconds', '-')} | {t.get('lr', '-'):.2g} | {t.get('weight_decay', 0):.2g} | "
                f"{t.get('batch_size', '-')} | {m.get('dropout', 0):.2f} | {m.get('embed_dim', '-')} | "
                f"{m.get('embedding_l2', 0):.2g} |"
            )
    return "\n".join(lines) + "\n"
