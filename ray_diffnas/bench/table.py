"""Tabular benchmarks: a table of (architecture -> metrics) read once, looked up by Tune trials.

A published NAS benchmark is a table whose rows are architectures and their measured metrics
(NAS-Bench-201 and its hardware add-ons, for example). :func:`load_table` reads one (CSV or
Parquet), parses its architecture column with a search space and keys every row by the space's
canonical architecture key, so that a query made by any searcher finds its row.

Trials get only the light part, :class:`~ray_diffnas.bench.table_trainable.TableLookup`.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ray_diffnas.atomic import atomic_write
from ray_diffnas.bench.table_trainable import TableLookup, table_alias
from ray_diffnas.errors import ConfigError, DiffNASError

logger = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")
# Where build-table records how a table was made (space, data, budget, curve columns) in the Parquet file.
TABLE_METADATA_KEY = b"ray_diffnas.table"
# Flat spaces up to this many points get every flat config of a table row as an alias (NB201: 15,625).
FLAT_ALIAS_LIMIT = 200_000


class TableError(DiffNASError):
    """A benchmark table is missing, unreadable, or lacks what the benchmark needs."""


def table_file(path: str | os.PathLike) -> Path:
    """``path``, checked to be a file.

    Raises:
        TableError: when it does not exist or is a folder, naming what to pass.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise TableError(
            f"Table file {str(path)!r} does not exist; pass the path of a CSV or Parquet file "
            f"with one row per architecture (--table PATH)."
        )
    if path.is_dir():
        raise TableError(f"Table path {str(path)!r} is a folder; pass one CSV or Parquet file.")
    return path


def read_frame(path: str | os.PathLike) -> pd.DataFrame:
    """Reads a CSV or Parquet file (by its suffix; anything else is read as CSV)."""
    path = table_file(path)
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    try:
        frame = pd.read_parquet(path) if parquet else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise TableError(
            f"Table file {str(path)!r} is empty; it needs a header and one row per architecture."
        ) from None
    except (ValueError, OSError, pa.ArrowException) as error:  # pandas' parser errors are ValueErrors
        kind = "Parquet" if parquet else "CSV"
        raise TableError(
            f"Table file {str(path)!r} could not be read as {kind} ({type(error).__name__}: "
            f"{str(error)[:200]}); save it as .csv or .parquet."
        ) from None
    return frame


@dataclass
class ArchTable:
    """A benchmark table keyed by architecture: the numeric metrics of each architecture in it.

    Build it with :func:`load_table`. ``rows`` maps the space's canonical key of each architecture
    to that row's numeric columns; ``row_numbers`` maps it to the row's 0-based position in the
    file (data rows; the header is not counted).

    Example:
        >>> import pandas as pd
        >>> from ray_diffnas.spaces.nb201 import NB201Space
        >>> cell = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
        >>> table = load_table(pd.DataFrame({"arch": [cell], "acc": [90.5]}), NB201Space())
        >>> table.rows[cell]
        {'acc': 90.5}
    """

    space: Any
    arch_column: str
    rows: dict[str, dict[str, float]]
    row_numbers: dict[str, int]
    columns: tuple[str, ...]  # the numeric metric columns, in file order
    source: str = "<DataFrame>"  # the file it was read from
    skipped_rows: int = 0  # rows the space could not parse
    duplicate_rows: int = 0  # later rows of an architecture already seen (the first row is kept)
    aliases: dict[str, str] = field(default_factory=dict)  # JSON of arch.to_dict() -> key
    metadata: dict[str, Any] = field(default_factory=dict)  # how build-table made it (empty for other tables)
    non_numeric: dict[str, Any] = field(default_factory=dict)  # other columns -> an example value
    _flat: tuple[tuple[str, ...], dict[str, str]] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.rows)

    def require_metric(self, name: str, role: str) -> None:
        """Raises a :class:`TableError` unless ``name`` is a numeric column (``role`` says what it is for)."""
        if name in self.columns:
            return
        if name in self.non_numeric:
            raise TableError(
                f"The {role} column {name!r} of {self.source!r} is not numeric "
                f"(e.g. {self.non_numeric[name]!r}); pick a column of numbers."
            )
        raise TableError(
            f"The {role} column {name!r} is not in {self.source!r}; numeric columns: {list(self.columns)}."
        )

    def lookup(self, flat: bool = False) -> TableLookup:
        """The picklable part that Tune trials need (see :func:`lookup_trainable`).

        Args:
            flat: Trials get flat configs (one entry per ``space.flat_choices()`` name, as
                Optuna sends): add each row's flat config as an alias, so that trials never
                have to build the space (which imports torch: seconds per Tune run).
        """
        aliases, names = self.aliases, tuple[str, ...]()
        if flat:
            names, flat_aliases = self.flat_aliases()
            aliases = {**aliases, **flat_aliases}
        return TableLookup(self.rows, aliases, self.space.to_dict(), self.columns, names)

    def flat_aliases(self) -> tuple[tuple[str, ...], dict[str, str]]:
        """The space's flat names, and JSON of each flat config whose architecture is a row -> its key
        (empty when the flat space is larger than ``FLAT_ALIAS_LIMIT``)."""
        if self._flat is None:
            choices = self.space.flat_choices()
            names, aliases = tuple(choices), {}
            if math.prod(len(v) for v in choices.values()) <= FLAT_ALIAS_LIMIT:
                for values in itertools.product(*choices.values()):
                    flat = dict(zip(names, values))
                    try:
                        key = self.space.from_flat(flat).key()
                    except DiffNASError:
                        continue
                    if key in self.rows:
                        aliases[table_alias(flat)] = key
            self._flat = (names, aliases)
        return self._flat


def load_table(source: str | os.PathLike | pd.DataFrame, space: Any, arch_column: str = "arch") -> ArchTable:
    """Reads a table and keys its rows by ``space.validate(cell).key()``.

    Args:
        source: A CSV or Parquet path, or a ``pandas.DataFrame``.
        space: The search space that parses the architecture column (``NB201Space``,
            ``UNetSpace``, ...). Cells may be what ``space.validate`` takes (e.g. NAS-Bench-201
            strings) or JSON text of a dict (e.g. UNet architectures).
        arch_column: The column holding the architectures.

    Raises:
        TableError: for a missing or unreadable file, an empty table, a missing architecture
            column, or a table in which no row is an architecture of ``space``.
    """
    frame = source if isinstance(source, pd.DataFrame) else read_frame(source)
    name = "<DataFrame>" if isinstance(source, pd.DataFrame) else str(source)
    metadata = {} if isinstance(source, pd.DataFrame) else read_table_metadata(source) or {}
    if frame.empty:
        raise TableError(f"Table {name!r} has no rows; it needs one row per architecture.")
    if arch_column not in frame.columns:
        raise TableError(
            f"Table {name!r} has no architecture column {arch_column!r}; its columns are "
            f"{[str(c) for c in frame.columns]}; name the right one with --arch-column."
        )
    numeric, non_numeric = _split_columns(frame, arch_column)
    table = ArchTable(
        space, arch_column, {}, {}, tuple(numeric), source=name, non_numeric=non_numeric, metadata=metadata
    )
    _fill_rows(table, frame[arch_column].tolist(), frame[numeric].to_numpy(dtype=float))
    return table


def read_table_metadata(path: str | os.PathLike) -> dict[str, Any] | None:
    """A table's build metadata (see ``ray_diffnas.bench.build``), or None for a file ``build-table``
    did not write (a CSV, another Parquet file)."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in PARQUET_SUFFIXES or not path.is_file():
        return None
    try:
        raw = (pq.read_schema(path).metadata or {}).get(TABLE_METADATA_KEY)
        return None if raw is None else dict(json.loads(raw))
    except (OSError, ValueError, pa.ArrowException):  # unreadable: read_frame says why
        return None


def write_table_file(
    frame: pd.DataFrame, path: Path, metadata: dict[str, Any], key: bytes = TABLE_METADATA_KEY
) -> Path:
    """Writes a frame to Parquet with ``metadata`` (JSON) under ``key``, atomically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), key: json.dumps(metadata)})
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def _split_columns(frame: pd.DataFrame, arch_column: str) -> tuple[list[str], dict[str, Any]]:
    """Numeric metric columns, and the other columns with an example value (for error messages)."""
    numeric, other = [], {}
    for column in frame.columns:
        if column == arch_column:
            continue
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            numeric.append(str(column))
        else:
            present = values.dropna()
            other[str(column)] = present.iloc[0] if len(present) else None
    return numeric, other


def _fill_rows(table: ArchTable, cells: list[Any], values: Any) -> None:
    first_error: str | None = None
    for number, (cell, row) in enumerate(zip(cells, values)):
        try:
            arch = table.space.validate(parse_cell(cell))
        except DiffNASError as error:
            table.skipped_rows += 1
            first_error = first_error or f"row {number} ({str(cell)[:120]!r}): {error}"
            continue
        key = arch.key()
        if key in table.rows:
            table.duplicate_rows += 1
            continue
        table.rows[key] = {c: float(v) for c, v in zip(table.columns, row)}
        table.row_numbers[key] = number
        table.aliases[table_alias(arch.to_dict())] = key
    if not table.rows:
        raise TableError(
            f"No row of {table.source!r} is an architecture of {table.space!r} (column "
            f"{table.arch_column!r}); the first error: {first_error}. Check --space and --arch-column."
        )
    if table.skipped_rows:
        logger.warning(
            "%d of %d rows of %r are not architectures of the space and were skipped; the first: %s",
            table.skipped_rows,
            len(cells),
            table.source,
            first_error,
        )
    if table.duplicate_rows:
        logger.warning(
            "%d rows of %r repeat an architecture of an earlier row; the first row of each is kept.",
            table.duplicate_rows,
            table.source,
        )


def parse_cell(cell: Any) -> Any:
    """A table cell as ``space.validate`` takes it: JSON text of a dict or list is decoded."""
    if isinstance(cell, str) and cell.lstrip().startswith(("{", "[")):
        try:
            return json.loads(cell)
        except ValueError as error:
            raise ConfigError(f"the cell looks like JSON but is not valid JSON ({error})") from None
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        raise ConfigError("the cell is empty")
    return cell
