"""Errors raised on bad input data."""

from __future__ import annotations

from collections.abc import Sequence


class DataError(ValueError):
    """Input data that cannot be used; the message names the file, the rows and the problem."""


def describe_rows(
    rows: Sequence[int], values: Sequence[object] | None = None, limit: int = 5
) -> str:
    """Render up to ``limit`` offending file rows (1-based, header is row 1) with their values."""
    shown = []
    for i, row in enumerate(rows[:limit]):
        shown.append(f"row {row}" + (f" ({values[i]!r})" if values is not None else ""))
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{len(rows)} row(s): " + ", ".join(shown) + more
