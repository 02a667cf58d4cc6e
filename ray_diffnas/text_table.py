"""The one table printer: fixed-width text tables for the terminal (leaderboards, benchmark summaries)."""

from __future__ import annotations

from typing import Sequence


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Columns padded to their widest cell: the first ``left`` columns flush left (names), the
    rest flush right (numbers).

    Example:
        >>> print(format_table(["searcher", "best"], [["graph", "91.6"], ["random", "9.2"]]))
        searcher  best
        graph     91.6
        random     9.2
    """
    lines = [list(map(str, header))] + [list(map(str, row)) for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))
        ).rstrip()
        for line in lines
    )
