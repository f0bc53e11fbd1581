"""``lr-recsys study``: every section of the analysis report from one committed config.

A study is a list of sections over one base comparison setting (data, seeds, tuned
hyperparameters, the budgeted LLM explanation table):

* ``compare``: models x tasks x seeds on the full training split (paper Table 2, the ablations,
  the controls);
* ``curve``: the same at several fractions of the training split (Table 3);
* ``variants``: LR-Recsys trained on explanation tables written by other prompt variants for the
  same budget pairs (Tables 4-5 spirit); tables the LLM has not written yet are generated through
  the durable LLM cache.

Every unit (model x task x seed on one data setting) is cached on disk as soon as it finishes,
keyed by everything that determines it, so a stopped study continues where it stopped and units
shared between sections run once. The analyses (attention, per-item insights, uncertainty vs gain)
read the cached predictions and the kept weights of one model (``lr_recsys.report``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm.auto import tqdm

from lr_recsys import schema
from lr_recsys.compare import experiment_data, run_units, summarise, with_bias
from lr_recsys.config import CompareConfig, compare_config, deep_merge, load_settings
from lr_recsys.models import explanation_source, model_names
from lr_recsys.tuned import configs_for, read_tuned

log = logging.getLogger(__name__)

SectionKind = Literal["compare", "curve", "variants"]
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class Section(BaseModel):
    """One section of a study."""

    model_config = ConfigDict(extra="forbid")

    name: str  # identifier ([a-z][a-z0-9_]*), the report's anchor
    kind: SectionKind = "compare"
    title: str = ""
    models: list[str] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)  # CompareConfig overrides
    train_fractions: list[float] = Field(default_factory=list)  # kind "curve"
    variants: list[str] = Field(default_factory=list)  # kind "variants": prompt variants
    variant_pairs: int = 200  # kind "variants": the budget pairs every variant explains
    positive_only_from: str = "contrastive"  # "positive_only" = this table's positives

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"section name {v!r}: expected [a-z][a-z0-9_]* (at most 40 chars)")
        return v


class Analysis(BaseModel):
    """Which trained model the attention, insight and uncertainty analyses read."""

    model_config = ConfigDict(extra="forbid")

    section: str = "main"
    model: str = "lr-recsys"
    twin: str = "lr-recsys-noexp"  # Ablation 1: its seed spread is the uncertainty
    seed: int = 0  # the seed whose weights the attention analysis reads
    insight_items: int = 8
    insight_keywords: int = 8
    insight_task: str = schema.REGRESSION
    uncertainty_bins: int = 5


class StudyConfig(BaseModel):
    """Settings of ``lr-recsys study``."""

    model_config = ConfigDict(extra="forbid")

    out_dir: Path = Path("benchmarks/results/study")
    compare: dict[str, Any] = Field(default_factory=dict)  # base CompareConfig settings
    explain: dict[str, Any] = Field(default_factory=dict)  # ExplainConfig for variant tables
    sections: list[Section]
    analysis: Analysis = Field(default_factory=Analysis)
    # the report's figures README shows, copied here on every run (e.g. "docs"): file stems
    docs_dir: Path | None = None
    docs_figures: list[str] = Field(default_factory=list)

    @field_validator("sections")
    @classmethod
    def _sections(cls, v: list[Section]) -> list[Section]:
        names = [s.name for s in v]
        if not v or len(set(names)) != len(names):
            raise ValueError(f"a study needs sections with distinct names, got {names}")
        unknown = sorted({m for s in v for m in s.models} - set(model_names()))
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; available: {model_names()}")
        return v

    def section_config(self, section: Section) -> CompareConfig:
        """The comparison settings of ``section``: the base, then its own overrides."""
        merged = deep_merge(self.compare, section.settings)
        if section.models:
            merged["models"] = section.models
        return compare_config(merged)


def load_study_config(path: Path, cli: dict[str, Any] | None = None) -> StudyConfig:
    """A ``StudyConfig`` from a TOML/JSON file < environment < ``cli``."""
    settings = load_settings(path, cli)
    try:
        return StudyConfig(**settings)
    except Exception as exc:  # pydantic names the field; add the file
        raise ValueError(f"study config {path}: {exc}") from exc


# -- the unit cache ---------------------------------------------------------------------------


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


class UnitCache:
    """Finished units on disk: ``<key>.json`` (metrics, best epoch, timing, history) and
    ``<key>.npy`` (test predictions), and for kept units the weights in ``<key>.model/``. The
    JSON is written last and atomically, so a unit is either complete or absent."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def key(self, data_key: str, name: str, task: str, model_cfg, train_cfg) -> str:
        train = {k: v for k, v in asdict(train_cfg).items() if k not in ("progress",)}
        return _digest([data_key, name, task, asdict(model_cfg), train])[:24]

    def has(self, key: str) -> bool:
        """Whether the unit ``key`` finished (its metadata is written last)."""
        return (self.root / f"{key}.json").exists()

    def get(self, key: str) -> dict[str, Any] | None:
        meta = self.root / f"{key}.json"
        if not meta.exists():
            return None
        result = json.loads(meta.read_text())
        result["pred"] = np.load(self.root / f"{key}.npy")
        return result

    def put(self, key: str, result: dict[str, Any]) -> None:
        np.save(self.root / f"{key}.npy", np.asarray(result["pred"], dtype=np.float32))
        meta = {k: v for k, v in result.items() if k != "pred"}
        tmp = self.root / f"{key}.json.tmp"
        tmp.write_text(json.dumps(meta, default=float))
        tmp.replace(self.root / f"{key}.json")

    def model_dir(self, key: str) -> Path:
        return self.root / f"{key}.model"


def _study_unit(data, name: str, task: str, model_cfg, train_cfg, keep_dir: str | None):
    """One model x task x seed: metrics, history, test predictions (and weights when kept)."""
    from lr_recsys.evaluate import predict_all
    from lr_recsys.models.io import save_model
    from lr_recsys.train.experiment import run_model

    run = run_model(name, task, data, model_cfg, train_cfg)
    test = data.splits[explanation_source(name)][schema.SPLIT_TEST]
    if keep_dir:
        save_model(run.model, name, task, Path(keep_dir))
    return {
        "model": name, "task": task, "seed": train_cfg.seed, "test": run.test,
        "best_epoch": run.train.best_epoch, "samples_per_s": run.train.samples_per_s,
        "seconds": run.train.seconds, "history": run.train.history,
        "pred": predict_all(run.model, test),
        "examples": {k: int(v) for k, v in data.prepared.examples[schema.SPLIT].value_counts().items()},
    }  # fmt: skip


# -- planning -----------------------------------------------------------------------------------


@dataclass
class Job:
    """One data setting of a section and the units trained on it."""

    section: str
    label: str  # the row suffix in the report ("" for compare/curve, the variant otherwise)
    cfg: CompareConfig
    fraction: float
    models: list[str]
    data_key: str
    variant: str | None = None
    units: list[tuple] = field(default_factory=list)  # (name, task, model_cfg, train_cfg, key)
    skipped: str | None = None  # why the job did not train (e.g. every LLM generation failed)


def data_key(cfg: CompareConfig, fraction: float, table_id: str | None) -> str:
    """Everything that determines a section's tensors (not which models train on them)."""
    ae = {k: v for k, v in asdict(cfg.ae).items() if k != "progress"}
    data = cfg.data.model_dump(mode="json") | {"train_fraction": fraction}
    return _digest({
        "data": data, "table": table_id, "llm_pairs": cfg.llm_pairs, "policy": cfg.budget_policy,
        "budget_seed": cfg.budget_seed, "ae": ae, "sample_seed": cfg.seeds[0] if cfg.seeds else 0,
    })[:24]  # fmt: skip


def _table_id(cfg: CompareConfig) -> str | None:
    if cfg.explanations is None:
        return None
    if not Path(cfg.explanations).exists():
        raise FileNotFoundError(
            f"explanation table {cfg.explanations} does not exist (set [compare] explanations "
            "to a table written by `lr-recsys explain`)"
        )
    from lr_recsys.lineage import file_sha256

    return file_sha256(Path(cfg.explanations))[:16]


def plan(study: StudyConfig, cache: UnitCache) -> list[Job]:
    """Every job of the study with its units and cache keys, in run order."""
    jobs: list[Job] = []
    for section in study.sections:
        cfg = study.section_config(section)
        if section.kind == "variants":
            jobs += _variant_jobs(study, section, cfg)
            continue
        fractions = section.train_fractions if section.kind == "curve" else []
        for fraction in fractions or [cfg.data.train_fraction]:
            key = data_key(cfg, fraction, _table_id(cfg))
            jobs.append(Job(section.name, "", cfg, fraction, with_bias(cfg.models), key))
    for job in jobs:
        tuned = read_tuned(job.cfg.tuned_config)
        for name in job.models:
            for task in job.cfg.tasks:
                model_cfg, train_cfg = configs_for(name, task, job.cfg.model, job.cfg.train, tuned)
                for s in job.cfg.seeds:
                    tcfg = replace(train_cfg, seed=s)
                    key = cache.key(job.data_key, name, task, model_cfg, tcfg)
                    job.units.append((name, task, model_cfg, tcfg, key))
    return jobs


def variant_table_path(study: StudyConfig, variant: str, pairs: int) -> Path:
    return study.out_dir / "variants" / f"{variant}_{pairs}.parquet"


def _variant_jobs(study: StudyConfig, section: Section, cfg: CompareConfig) -> list[Job]:
    from lr_recsys.explain.prompts import get_variant

    jobs = []
    for variant in section.variants:
        source = section.positive_only_from if variant == "positive_only" else variant
        get_variant(source)  # fail early on an unknown variant
        model = "lr-recsys-pos" if variant == "positive_only" else "lr-recsys"
        table = variant_table_path(study, source, section.variant_pairs)
        vcfg = cfg.model_copy(update={"explanations": table, "llm_pairs": None})
        ident = _digest([source, section.variant_pairs, cfg.budget_seed, study.explain])[:16]
        key = data_key(vcfg, cfg.data.train_fraction, f"variant:{ident}")
        jobs.append(Job(section.name, variant, vcfg, cfg.data.train_fraction, [model], key, source))
    return jobs


# -- running ------------------------------------------------------------------------------------


def ensure_variant_table(study: StudyConfig, job: Job, pairs: int) -> dict[str, Any]:
    """Write the explanation table of ``job.variant`` for the first ``pairs`` budget pairs (the
    base table's rows when it is the base variant and covers them; else the LLM, through the
    durable cache, so a stopped generation resumes); returns the generation's statistics."""
    from lr_recsys.data import load_prepared
    from lr_recsys.explain.budget import select_budget
    from lr_recsys.explain.config import ExplainConfig
    from lr_recsys.explain.engine import pairs_from_examples
    from lr_recsys.explain.run import explain_pairs
    from lr_recsys.explain.table import load_explanations, save_explanations

    path = Path(job.cfg.explanations)
    stats_path = path.with_suffix(".json")
    if path.exists() and stats_path.exists():
        return json.loads(stats_path.read_text())
    base = study.compare
    full = load_prepared(job.cfg.data.model_copy(update={"train_fraction": 1.0}))
    budget = select_budget(full.examples, pairs, job.cfg.budget_seed, job.cfg.budget_policy)
    keys = set(budget[schema.PAIR_KEY])
    ecfg = ExplainConfig(**deep_merge(study.explain, {"variant": job.variant, "progress": False}))
    t0 = time.perf_counter()
    stats: dict[str, Any] = {"variant": job.variant, "pairs": len(keys)}
    table = None
    if base.get("explanations") and ecfg.variant == study.explain.get("variant", "attributes"):
        have = load_explanations(Path(base["explanations"]))
        have = have[have[schema.PAIR_KEY].isin(keys)]
        if len(have) == len(keys):
            table, stats["source"] = have.reset_index(drop=True), str(base["explanations"])
    if table is None:
        ecfg = ecfg.model_copy(update={"data": job.cfg.data})
        table, run = explain_pairs(ecfg, full, pairs_from_examples(budget))
        stats |= {"source": "llm", "summary": run.summary()}
    stats["seconds"] = round(time.perf_counter() - t0, 1)
    table, stats["failed_pairs"] = drop_failed(table)
    if table.empty:  # nothing to train on: say so instead of training on the bare seeds
        stats["error"] = f"every generation failed ({stats['failed_pairs']}/{len(keys)} pairs)"
        stats_path.write_text(json.dumps(stats, default=str))
        return stats
    negative = table[schema.NEGATIVE].notna().all()
    save_explanations(table, path, require_negative=bool(negative))
    stats_path.write_text(json.dumps(stats, default=str))
    return stats


def drop_failed(table):
    """``table`` without the pairs whose generation failed (the engine's ``failed`` flag: the
    answer is only its seeded prefix, not the LLM's words) and how many were dropped; they are
    reported as missing and the distilled explainer covers them."""
    from lr_recsys.explain.engine import FLAGS
    from lr_recsys.explain.normalize import FAILED

    if FLAGS not in table.columns:
        return table, 0
    failed = table[FLAGS].fillna("").astype(str).str.contains(FAILED).to_numpy()
    return table[~failed].reset_index(drop=True), int(failed.sum())


def run_study(study: StudyConfig, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) every section, then the analyses; write ``study.json`` and the report to
    ``study.out_dir``; returns the study document."""
    from lr_recsys.report import analyse, write_report

    out = Path(study.out_dir)
    cache = UnitCache(out / "cache")
    jobs = plan(study, cache)
    keys = {u[-1] for j in jobs for u in j.units}  # units shared by sections run once
    total = len(keys)
    done = sum(cache.has(k) for k in keys)
    log.info("study: %d jobs, %d distinct units, %d already cached", len(jobs), total, done)
    bar = tqdm(total=total, initial=done, desc="study", unit="run", disable=not progress)
    timings: dict[str, float] = {}
    generation: dict[str, Any] = {}
    built: dict[str, Any] = {}  # data_key -> ExperimentData, kept for the analyses
    keep = _kept_units(study, jobs)
    models_on: dict[str, list[str]] = {}
    for job in jobs:
        models_on[job.data_key] = list(dict.fromkeys(models_on.get(job.data_key, []) + job.models))
    for job in jobs:
        t0 = time.perf_counter()
        section = next(s for s in study.sections if s.name == job.section)
        if job.variant is not None:
            generation[job.label] = ensure_variant_table(study, job, section.variant_pairs)
            if "error" in generation[job.label]:
                log.warning("study: %s not trained: %s", job.label, generation[job.label]["error"])
                job.skipped = generation[job.label]["error"]
                bar.total -= len(job.units)
                bar.refresh()
                continue
        missing = [u for u in job.units if not cache.has(u[-1])]
        if missing:
            bar.set_postfix_str(f"{job.section} {job.label or job.fraction}")
            data = built.get(job.data_key)
            if data is None:  # every model on this data setting, so later jobs reuse it
                cfg = job.cfg.model_copy(update={"models": models_on[job.data_key]})
                data = built[job.data_key] = experiment_data(cfg, job.fraction)
            units = [(*u[:4], str(cache.model_dir(u[-1])) if u[-1] in keep else None)
                     for u in missing]  # fmt: skip

            def persist(k: int, result: dict[str, Any], missing=missing) -> None:
                cache.put(missing[k][-1], result)
                bar.update(1)

            run_units(data, units, job.cfg.workers, fn=_study_unit, on_result=persist)
        timings[job.section] = timings.get(job.section, 0.0) + time.perf_counter() - t0
        _add_time(cache, job.section, time.perf_counter() - t0)
    bar.close()
    doc = {"config": study.model_dump(mode="json"), "sections": {}, "timings_s": timings,
           "generation": generation}  # fmt: skip
    for job in jobs:
        runs = [] if job.skipped else [cache.get(u[-1]) for u in job.units]
        sec = doc["sections"].setdefault(job.section, {"kind": _kind(study, job), "jobs": []})
        sec["jobs"].append(_job_doc(job, runs))
    t0 = time.perf_counter()
    doc["analysis"] = analyse(study, jobs, cache, built)
    timings["analysis"] = time.perf_counter() - t0
    doc["compute_s"] = _add_time(cache, "analysis", timings["analysis"])
    (out / "study.json").write_text(json.dumps(doc, indent=1, default=float))
    write_report(doc, out)
    copy_figures(out, study.docs_dir, study.docs_figures)
    return doc


def copy_figures(out: Path, docs_dir: Path | None, stems: list[str]) -> list[Path]:
    """Copy the report's figures ``stems`` (``out/figures/<stem>.png``) to ``docs_dir``.

    Raises:
        FileNotFoundError: a named figure was not drawn (the message lists those that were).
    """
    import shutil

    if docs_dir is None or not stems:
        return []
    figures = Path(out) / "figures"
    missing = [s for s in stems if not (figures / f"{s}.png").exists()]
    if missing:
        drawn = sorted(p.stem for p in figures.glob("*.png"))
        raise FileNotFoundError(f"docs_figures {missing} were not drawn; the report has {drawn}")
    Path(docs_dir).mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copyfile(figures / f"{s}.png", Path(docs_dir) / f"{s}.png")) for s in stems]


def _add_time(cache: UnitCache, section: str, seconds: float) -> dict[str, float]:
    """Add ``seconds`` to ``section``'s compute time over every (resumed) run of the study;
    returns the totals (``timings.json`` beside the report)."""
    path = cache.root.parent / "timings.json"
    totals = json.loads(path.read_text()) if path.exists() else {}
    totals[section] = round(totals.get(section, 0.0) + seconds, 1)
    path.write_text(json.dumps(totals))
    return totals


def _kind(study: StudyConfig, job: Job) -> str:
    return next(s.kind for s in study.sections if s.name == job.section)


def _kept_units(study: StudyConfig, jobs: list[Job]) -> set[str]:
    """Units whose weights the analyses read: the analysis model at its seed, every task."""
    a = study.analysis
    return {u[-1] for j in jobs if j.section == a.section and not j.label
            for u in j.units if u[0] == a.model and u[3].seed == a.seed}  # fmt: skip


def _job_doc(job: Job, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A job's results in ``lr-recsys compare``'s layout, plus run metadata."""
    seconds = sum(r["seconds"] for r in runs)
    epochs: dict[str, dict[str, list[int]]] = {}
    for r in runs:
        epochs.setdefault(r["model"], {}).setdefault(r["task"], []).append(r["best_epoch"])
    return {
        "label": job.label, "variant": job.variant, "fraction": job.fraction, "skipped": job.skipped,
        "results": summarise(runs),
        "meta": {"models": job.models, "examples": runs[0].get("examples", {}) if runs else {}, "seeds": job.cfg.seeds, "tasks": job.cfg.tasks,
                 "dataset": job.cfg.data.dataset, "explanations": str(job.cfg.explanations),
                 "llm_pairs": job.cfg.llm_pairs, "train_seconds": round(seconds, 1),
                 "best_epochs": epochs, "epochs": job.cfg.train.epochs,
                 "patience": job.cfg.train.patience,
                 "tuned_config": str(job.cfg.tuned_config) if job.cfg.tuned_config else None},
    }  # fmt: skip


def unit_predictions(job: Job, cache: UnitCache, model: str, task: str) -> dict[int, np.ndarray]:
    """Cached test predictions of ``model`` on ``task`` by seed."""
    out = {}
    for name, t, _, tcfg, key in job.units:
        if name == model and t == task:
            hit = cache.get(key)
            if hit is not None:
                out[tcfg.seed] = hit["pred"]
    return out


__all__ = [
    "Analysis",
    "Job",
    "Section",
    "StudyConfig",
    "UnitCache",
    "load_study_config",
    "plan",
    "run_study",
    "unit_predictions",
]
