"""The report as markdown (figures as PNG files beside it), one self-contained HTML file (the same
text, figures embedded as data URIs) and JSON (every number)."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from typing import Any

from lr_recsys.compare import (
    TABLE_METRICS,
    learning_curve_table,
    markdown_table,
    paired_test,
    plot_learning_curve,
    relative_improvement,
)
from lr_recsys.report import plots

FIGURES = "figures"
REPORT_MD, REPORT_HTML, REPORT_JSON = "report.md", "report.html", "report.json"


def _fmt_p(p: float | None) -> str:
    return "-" if p is None else f"{p:.3f}"


def demote(md: str) -> str:
    """``md`` with every heading one level deeper (tables nested under a report section)."""
    return re.sub(r"^(#+) ", r"#\1 ", md, flags=re.MULTILINE)


def _section_compare(sec: dict[str, Any], title: str, figdir: Path, name: str) -> list[str]:
    job = max(sec["jobs"], key=lambda j: j["fraction"])
    lines = [f"## {title}", "", demote(markdown_table(job)).rstrip(), ""]
    fig = plots.comparison_bars(job["results"], figdir / f"{name}.png", title)
    if fig:
        lines += [f"![{title}]({FIGURES}/{fig.name})", ""]
    return lines


def _section_curve(sec: dict[str, Any], title: str, figdir: Path, name: str) -> list[str]:
    curve = {str(j["fraction"]): j for j in sec["jobs"]}
    lines = [f"## {title}", "", demote(learning_curve_table(curve).split("\n", 2)[-1]).rstrip(), ""]
    fig = plot_learning_curve(curve, figdir / f"{name}.png")
    return lines + [f"![{title}]({FIGURES}/{fig.name})", ""]


def _variant_rows(sec, twin_job, twin: str, generation) -> tuple[list[str], dict]:
    """Per prompt variant and task: mean ± std and the Δ vs the twin (paired across seeds)."""
    lines, points = [], {}
    for task, metrics in TABLE_METRICS.items():
        head = ["variant (model)", "LLM pairs (not failed)"]
        for m in metrics:
            head += [m.upper(), f"Δ vs {twin}", "p"]
        rows = []
        for job in sec["jobs"]:
            if job.get("skipped"):
                rows.append(f"| {job['label']} | 0 | not trained: {inline(job['skipped'])} |"
                            + " |" * (len(head) - 3))  # fmt: skip
                continue
            res = next(iter(job["results"].items()), None)
            if res is None or task not in res[1]:
                continue
            model, tasks = res
            gen = generation.get(job["label"], {})
            explained = gen.get("pairs", 0) - gen.get("failed_pairs", 0) if gen else "-"
            row = [f"{job['label']} ({model})", str(explained)]
            for m in metrics:
                s = tasks[task].get(m)
                ref = twin_job["results"].get(twin, {}).get(task, {}).get(m) if twin_job else None
                if s is None:
                    row += ["-", "-", "-"]
                    continue
                row.append(f"{s['mean']:.4f} ± {s['std']:.4f}")
                if ref:
                    row += [f"{relative_improvement(s['mean'], ref['mean'], m):+.2f}%",
                            _fmt_p(paired_test(s["runs"], ref["runs"]))]  # fmt: skip
                else:
                    row += ["-", "-"]
                points.setdefault((task, m), []).append((job["label"], s))
            rows.append("| " + " | ".join(row) + " |")
        if rows:
            lines += [f"### {task}", "", "| " + " | ".join(head) + " |",
                      "|" + "---|" * len(head), *rows, ""]  # fmt: skip
    return lines, points


def _section_variants(doc, sec, title, figdir, name) -> list[str]:
    a = doc["config"]["analysis"]
    twin_job = _full_job(doc, a["section"])
    lines = [f"## {title}", ""]
    pairs = {g.get("pairs") for g in doc.get("generation", {}).values()}
    lines.append(
        f"Each prompt variant explains the same {', '.join(str(p) for p in sorted(pairs - {None}))} "
        "budget pairs; LR-Recsys reads the LLM's vectors for them and the distilled explainer's "
        "(trained on that variant's texts) for every other pair. `positive_only` is the "
        "positive-only model on the contrastive table's positive explanations. Δ vs the twin "
        "(no explanations) of the main section, paired across seeds."
    )
    lines.append("")
    rows, points = _variant_rows(sec, twin_job, a["twin"], doc.get("generation", {}))
    lines += rows
    ref = None
    if twin_job:
        ref = {k: twin_job["results"].get(a["twin"], {}).get(k[0], {}).get(k[1]) for k in points}
    fig = plots.variant_bars(points, ref, figdir / f"{name}.png")
    if fig:
        lines += [f"![{title}]({FIGURES}/{fig.name})", ""]
    gen = doc.get("generation", {})
    if gen:
        lines += ["LLM generation per variant table:", ""]
        shared = {"positive_only": "the `contrastive` table's positive explanations (no new call)"}
        lines += [f"- `{k}`: {shared.get(k) or _generation(v)}" for k, v in gen.items()]
        lines.append("")
    return lines


def _generation(stats: dict[str, Any]) -> str:
    """One line on how a variant's table came to be."""
    failed = stats.get("failed_pairs")
    dropped = (f"; {failed} pairs whose generation failed are reported missing (distilled), "
               "not trained on" if failed else "")  # fmt: skip
    if stats.get("error"):
        return f"{stats.get('pairs')} pairs asked: {stats['error']}; not trained"
    if stats.get("source") != "llm":
        return f"{stats.get('pairs')} pairs from `{stats.get('source')}` (no LLM call){dropped}"
    run = stats.get("summary") or {}
    if not isinstance(run, dict):
        return f"{stats.get('pairs')} pairs by the LLM in {stats.get('seconds')} s: {run}"
    return (
        f"{stats.get('pairs')} pairs by the LLM in {stats.get('seconds')} s: "
        f"{run.get('generated', '-')} generated, {run.get('cache_hits', '-')} from the cache, "
        f"{run.get('failed', '-')} failed, {run.get('flagged', '-')} flagged{dropped}"
    )


def _full_job(doc: dict[str, Any], section: str) -> dict[str, Any] | None:
    sec = doc["sections"].get(section)
    if not sec:
        return None
    jobs = [j for j in sec["jobs"] if not j["label"]]
    return max(jobs, key=lambda j: j["fraction"]) if jobs else None


def attention_lines(att: dict[str, Any], figdir: Path, prefix: str = "") -> list[str]:
    """Markdown of the attention analysis (``analysis.attention``), figures written to ``figdir``."""
    lines = ["## Attention analysis", ""]
    lines.append(
        "Each input token's share of the self-attention per prediction (the attention it "
        "receives, averaged over the six queries; the shares of one prediction sum to 1). "
        "Correct: the prediction falls on the same side of the high/low boundary as the rating."
    )
    lines.append("")
    for task, s in att.items():
        if "error" in s:
            lines += [f"### {task}", "", f"Not analysed: {s['error']}", ""]
            continue
        tokens = s["tokens"]
        lines += [f"### {task} (n = {s['n']}, shares sum to 1 within {s['sum_max_error']:.1e}, "
                  f"high/low accuracy {s['accuracy']:.3f})", "",
                  "| group | n | " + " | ".join(tokens) + " |", "|" + "---|" * (len(tokens) + 2)]  # fmt: skip
        for group, row in s["means"].items():
            lines.append(
                f"| {group} | {row['n']} | " + " | ".join(f"{row[t]:.3f}" for t in tokens) + " |"
            )
        lines.append("")
        for fig in plots.attention_figures(s, figdir, f"{prefix}attention_{task}"):
            lines += [f"![attention {task}]({FIGURES}/{fig.name})", ""]
    return lines


_MARKUP = re.compile(r"([\\`*_\[\]<>#!|])")


def inline(text: Any) -> str:
    """``text`` as one line of literal markdown text (markup characters escaped)."""
    return _MARKUP.sub(r"\\\1", " ".join(str(text).split()))


def insight_lines(ins: dict[str, Any]) -> list[str]:
    lines = ["## Per-item insights", ""]
    if "error" in ins:
        return lines + [f"Not available: {ins['error']}", ""]
    lines.append(
        f"What consumers like and dislike about the {len(ins['items'])} items with the most "
        f"LLM-explained pairs ({ins['explained_pairs']} explained pairs in all): the words of "
        "their positive and negative explanations, each occurrence weighted by the attention the "
        f"{ins['task']} model paid to that explanation (stop words, the prompt's template words "
        "and the titles an explanation names are not counted). Score (occurrences)."
    )
    lines.append("")
    for it in ins["items"]:
        like = ", ".join(f"{k['word']} {k['score']:.2f} ({k['count']})" for k in it["positive"])
        dis = ", ".join(f"{k['word']} {k['score']:.2f} ({k['count']})" for k in it["negative"])
        lines += [
            f"- **{inline(it['title'])}** ({it['pairs']} explained pairs; mean attention on the "
            f"positive explanation {it['attention_positive']:.3f}, on the negative "
            f"{it['attention_negative']:.3f})",
            f"  - liked for: {inline(like or '-')}",
            f"  - disliked for: {inline(dis or '-')}",
        ]
    return lines + [""]


def uncertainty_lines(unc: dict[str, Any], figdir: Path) -> list[str]:
    lines = ["## Uncertainty vs gain", ""]
    if "error" in unc:
        return lines + [f"Not available: {unc['error']}", ""]
    lines += [
        f"Test pairs binned by the twin's uncertainty (std of `{unc['twin']}`'s predictions "
        f"across seeds {unc['seeds']}, quantile bins); the RMSE gain of LR-Recsys over the twin "
        "per bin (positive = LR-Recsys better), mean ± std across seeds, paired t-test.", "",
        "| bin | pairs | twin std | RMSE twin | RMSE LR-Recsys | gain | p |", "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for b in unc["bins"]:
        lines.append(
            f"| {b['bin'] + 1} | {b['n']} | {b['uncertainty_lo']:.4f}-{b['uncertainty_hi']:.4f} | "
            f"{b['rmse_twin']:.4f} | {b['rmse_model']:.4f} | {b['gain_pct']:+.2f}% ± "
            f"{b['gain_std']:.2f} | {_fmt_p(b['p'])} |"
        )
    fig = plots.uncertainty_bars(unc, figdir / "uncertainty_gain.png")
    return lines + ["", f"![uncertainty vs gain]({FIGURES}/{fig.name})", ""]


MODEL_NOTES = {
    "lr-recsys": "LR-Recsys: AutoEncoder vectors of the LLM's explanations where the LLM explained "
    "the pair, the distilled explainer's elsewhere",
    "lr-recsys-noexp": "Ablation 1, the twin: the explanation tokens are free parameters",
    "lr-recsys-pos": "positive explanation only (five tokens)",
    "lr-recsys-raw": "Ablation 2: raw MiniLM sentence vectors instead of the AutoEncoder",
    "lr-recsys-ncf": "Robustness check 1: an NCF MLP head instead of self-attention",
    "lr-recsys-llm": "LLM vectors only (the training mean where the LLM did not explain)",
    "lr-recsys-distilled": "distilled vectors for every pair",
    "lr-recsys-content": "content control: the twin plus item-text vectors, no LLM",
    "mf": "baseline: matrix factorisation",
    "ncf": "baseline: neural collaborative filtering",
    "sasrec": "baseline: SASRec",
    "din": "baseline: DIN",
    "bias": "the floor: global mean + user bias + item bias (shrunk)",
}


def headline(doc: dict[str, Any]) -> list[str]:
    """One line per primary metric: the analysed model against the twin, the content control,
    the best baseline and the bias floor of the analysis section (paired across seeds)."""
    from lr_recsys.compare import best_baseline

    a = doc["config"]["analysis"]
    job = _full_job(doc, a["section"])
    if not job or a["model"] not in job["results"]:
        return []
    res = job["results"]
    lines = []
    for task, m in (("regression", "rmse"), ("classification", "auc")):
        mine = res[a["model"]].get(task, {}).get(m)
        if not mine:
            continue
        refs = [a["twin"], "lr-recsys-content", best_baseline(res, task, m), "bias"]
        parts = []
        for ref in dict.fromkeys(r for r in refs if r and r in res and r != a["model"]):
            other = res[ref].get(task, {}).get(m)
            if other:
                gain = relative_improvement(mine["mean"], other["mean"], m)
                parts.append(
                    f"{gain:+.2f}% vs {ref} (p {_fmt_p(paired_test(mine['runs'], other['runs']))})"
                )
        lines.append(
            f"- **{a['model']} {m.upper()} {mine['mean']:.4f} ± {mine['std']:.4f}**: "
            + "; ".join(parts)
        )
    return lines


def study_markdown(doc: dict[str, Any], out: Path) -> str:
    """The study report as markdown; figures are written to ``out/figures``."""
    figdir = Path(out) / FIGURES
    figdir.mkdir(parents=True, exist_ok=True)
    cfg = doc["config"]
    base = cfg.get("compare", {})
    lines = ["# LR-Recsys analysis report", ""]
    lines.append(
        f"Dataset `{base.get('data', {}).get('dataset', 'ml-100k')}`, seeds {base.get('seeds')}, "
        f"tuned config `{base.get('tuned_config')}`, LLM explanation table "
        f"`{base.get('explanations')}`. Every number below comes from this study's config; "
        "RMSE/MAE on the [0, 1] rating scale, Δ positive = better, p: two-sided paired t-test "
        "across seeds."
    )
    head = headline(doc)
    if head:
        lines += ["", "Headline (Δ positive = LR-Recsys better):", "", *head]
    present = {m for sec in doc["sections"].values() for j in sec["jobs"] for m in j["results"]}
    notes = [f"`{m}`: {note}" for m, note in MODEL_NOTES.items() if m in present]
    if notes:
        lines += ["", "Models: " + "; ".join(notes) + "."]
    lines += ["", "Sections: " + ", ".join(
        f"[{s['title'] or s['name']}](#{_anchor(s['title'] or s['name'])})" for s in cfg["sections"]
    ) + ", [attention](#attention-analysis), [insights](#per-item-insights), "
        "[uncertainty](#uncertainty-vs-gain), [run](#run).", ""]  # fmt: skip
    for s in cfg["sections"]:
        sec = doc["sections"].get(s["name"])
        if not sec:
            continue
        title = s["title"] or s["name"]
        if s["kind"] == "compare":
            lines += _section_compare(sec, title, figdir, s["name"])
        elif s["kind"] == "curve":
            lines += _section_curve(sec, title, figdir, s["name"])
        else:
            lines += _section_variants(doc, sec, title, figdir, s["name"])
    a = doc.get("analysis", {})
    if "error" in a:
        lines += ["## Analyses", "", f"Not run: {a['error']}", ""]
    else:
        lines += attention_lines(a.get("attention", {}), figdir)
        lines += insight_lines(a.get("insights", {"error": "not run"}))
        lines += uncertainty_lines(a.get("uncertainty", {"error": "not run"}), figdir)
    lines += ["## Run", "", "Wall-clock seconds per section: this run, and summed over every "
              "run of the study (a resumed study adds its time; cached units cost nothing).", "",
              "| section | this run | all runs |", "|---|---|---|"]  # fmt: skip
    total = doc.get("compute_s", {})
    for k, v in doc.get("timings_s", {}).items():
        lines.append(f"| {k} | {v:.0f} | {total.get(k, v):.0f} |")
    if total:
        lines.append(
            f"| **all** | {sum(doc['timings_s'].values()):.0f} | {sum(total.values()):.0f} |"
        )
    return "\n".join(lines) + "\n"


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).strip().replace(" ", "-")


_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1b1f24}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:1em 0;font-size:13px;display:block;overflow-x:auto}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fbfcfd}img{max-width:100%;height:auto;display:block;margin:1em 0}
code{background:#f6f8fa;padding:0 3px;border-radius:3px}
"""


def markdown_to_html(md: str, base: Path, title: str = "LR-Recsys analysis report") -> str:
    """One self-contained HTML page: ``md`` rendered, every local image embedded as a data URI,
    headings given the anchors the markdown links to."""
    from markdown_it import MarkdownIt

    # raw HTML off: titles and LLM texts are data, rendered as text, never as markup
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(md)

    def embed(m: re.Match) -> str:
        src = html.unescape(m.group(2))
        path = Path(base) / src
        if src.startswith(("data:", "http://", "https://")) or not path.exists():
            return m.group(0)
        kind = "svg+xml" if path.suffix == ".svg" else "png"
        data = base64.b64encode(path.read_bytes()).decode()
        return f'{m.group(1)}"data:image/{kind};base64,{data}"'

    body = re.sub(r'(<img src=)"([^"]+)"', embed, body)
    body = re.sub(
        r"<h([23])>(.*?)</h\1>",
        lambda m: (
            f'<h{m.group(1)} id="{_anchor(re.sub("<[^>]+>", "", html.unescape(m.group(2))))}">'
            f"{m.group(2)}</h{m.group(1)}>"
        ),
        body,
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def write_report(doc: dict[str, Any], out: Path) -> Path:
    """Write ``report.md`` (+ ``figures/``), ``report.html`` and ``report.json`` of a study
    document to ``out``; returns the HTML path."""
    out = Path(out)
    md = study_markdown(doc, out)
    (out / REPORT_MD).write_text(md)
    (out / REPORT_HTML).write_text(markdown_to_html(md, out))
    (out / REPORT_JSON).write_text(json.dumps(doc, indent=1, default=float))
    return out / REPORT_HTML


__all__ = [
    "REPORT_HTML",
    "REPORT_JSON",
    "REPORT_MD",
    "attention_lines",
    "insight_lines",
    "markdown_to_html",
    "study_markdown",
    "uncertainty_lines",
    "write_report",
]


def compare_report(results: Path, out: Path) -> Path:
    """The report of a ``lr-recsys compare`` output (``results.json`` with its ``.meta.json``
    and, for a learning curve, ``.learning_curve.json``): its tables and figures; the analyses
    need a trained model's weights and are left to ``lr-recsys study``."""
    results = Path(results)
    if not results.exists():
        raise FileNotFoundError(f"{results} does not exist; run `lr-recsys compare` first")
    meta_path = results.with_suffix(".meta.json")
    job = {
        "label": "", "fraction": 1.0, "results": json.loads(results.read_text()),
        "meta": json.loads(meta_path.read_text()) if meta_path.exists() else {},
    }  # fmt: skip
    if not isinstance(job["results"], dict) or not all(
        isinstance(v, dict) for v in job["results"].values()
    ):
        raise ValueError(f"{results} is not a comparison ({{model: {{task: {{metric: ...}}}}}})")
    sections = [{"name": "main", "kind": "compare", "title": "Comparison"}]
    doc = {"config": {"compare": {"seeds": job["meta"].get("seeds"),
                                  "tuned_config": job["meta"].get("tuned_config")},
                      "sections": sections, "analysis": {"section": "main", "model": "lr-recsys",
                                                         "twin": "lr-recsys-noexp"}},
           "sections": {"main": {"kind": "compare", "jobs": [job]}},
           "analysis": {"error": "a comparison keeps no model weights; `lr-recsys study` runs "
                        "the attention, insight and uncertainty analyses"}}  # fmt: skip
    curve = results.with_suffix(".learning_curve.json")
    if curve.exists():
        sections.append({"name": "curve", "kind": "curve", "title": "Learning efficiency"})
        jobs = [
            {"label": "", "fraction": float(f), **d}
            for f, d in json.loads(curve.read_text()).items()
        ]
        doc["sections"]["curve"] = {"kind": "curve", "jobs": jobs}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return write_report(doc, out)
