"""What every benchmark script ends with: a printed table and the rows as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

Column = tuple[str, str, Callable[[Any], str]]  # (row key, header, value -> text)


def report(rows: Sequence[dict[str, Any]], columns: Sequence[Column], output: str | Path) -> None:
    """Prints ``rows`` as a right-aligned table of ``columns`` and writes all of each row to ``output``."""
    cells = [[header for _, header, _ in columns]] + [[fmt(row[key]) for key, _, fmt in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        print("  ".join(text.rjust(width) for text, width in zip(line, widths)))
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(rows), indent=1))
    print(f"wrote {path}")
