"""The analysis report: a study's comparisons, learning curve, ablations and prompt variants, the
attention analysis, per-item insights and uncertainty vs gain, as markdown, one self-contained
HTML file and JSON (``lr-recsys report`` / ``lr-recsys study``)."""

from lr_recsys.report.build import analyse
from lr_recsys.report.render import markdown_to_html, study_markdown, write_report

__all__ = ["analyse", "markdown_to_html", "study_markdown", "write_report"]
