"""Great Expectations gates: run a suite over a DataFrame, stop with a readable report.

Every suite is a list of (expectation, what it guards) pairs; a failing gate raises
``GateFailed`` whose message names the suite, each failed expectation, how many rows broke it and
a few example values, so a pipeline run stops with something a person can act on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

Check = tuple[object, str]  # (a great_expectations expectation, the comment saying what it guards)


@dataclass
class Failure:
    """One failed expectation."""

    expectation: str
    column: str | None
    guards: str
    unexpected_count: int | None
    examples: list = field(default_factory=list)
    observed: object = None

    def line(self) -> str:
        where = f" on {self.column!r}" if self.column else ""
        count = f": {self.unexpected_count} row(s)" if self.unexpected_count is not None else ""
        ex = f", e.g. {self.examples[:5]}" if self.examples else ""
        obs = (
            f" (observed {self.observed!r})"
            if self.observed is not None and not self.examples
            else ""
        )
        return f"- {self.expectation}{where}{count}{ex}{obs} — guards: {self.guards}"


@dataclass
class Report:
    """The outcome of one suite."""

    suite: str
    rows: int
    evaluated: int
    failures: list[Failure]

    @property
    def success(self) -> bool:
        return not self.failures

    def text(self) -> str:
        head = f"gate {self.suite!r}: {len(self.failures)} of {self.evaluated} expectation(s) failed over {self.rows} rows"
        return "\n".join([head, *(f.line() for f in self.failures)])


class GateFailed(RuntimeError):
    """A validation gate stopped the run; ``report`` holds the details."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.text())
        self.report = report


def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return gx, ctx


def run_suite(name: str, frame: pd.DataFrame, checks: Sequence[Check]) -> Report:
    """Validate ``frame`` against ``checks`` with Great Expectations (ephemeral context)."""
    gx, ctx = _context()
    batch_def = (
        ctx.data_sources.add_pandas(f"{name}_source")
        .add_dataframe_asset(f"{name}_asset")
        .add_batch_definition_whole_dataframe(f"{name}_batch")
    )
    suite = ctx.suites.add(gx.ExpectationSuite(name=name))
    guards: dict[str, str] = {}
    for expectation, comment in checks:
        added = suite.add_expectation(expectation)
        guards[str(added.id)] = comment
    result = batch_def.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    failures = []
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        res = r.result or {}
        failures.append(
            Failure(
                expectation=cfg.type,
                column=cfg.kwargs.get("column") or cfg.kwargs.get("column_list"),
                guards=guards.get(str(cfg.id), ""),
                unexpected_count=res.get("unexpected_count"),
                examples=list(res.get("partial_unexpected_list") or []),
                observed=res.get("observed_value"),
            )
        )
    return Report(name, len(frame), len(result.results), failures)


def gate(
    name: str, frame: pd.DataFrame, checks: Sequence[Check] | Callable[[], Sequence[Check]]
) -> Report:
    """Run a suite and raise ``GateFailed`` (with the report) unless every expectation holds."""
    report = run_suite(name, frame, checks() if callable(checks) else checks)
    if not report.success:
        raise GateFailed(report)
    return report
