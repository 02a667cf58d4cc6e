"""Finished rows of an earlier table of the same build, taken into a new build instead of trained again.

A build's Tune folder is what a rerun resumes from; when it is gone (another machine, a fresh
checkout, a build split over several sessions or machines), the table it wrote still holds every
architecture it finished. ``build-table --reuse-table TABLE`` takes those rows as they are and
trains only the rest. The two builds must be the same experiment: the same space, data set, image
size, training settings and seed (the table's metadata says), or the rows would not be comparable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ray_diffnas.bench.table import read_frame, read_table_metadata
from ray_diffnas.errors import DiffNASError

# What makes two builds the same experiment (the rest of the metadata says where and when it ran). The
# feature extractor is the one RFID used, not the one asked for: "auto" picks Inception where its weights
# are and the data set's classifier elsewhere, whose RFIDs are on other scales (the classifier's name
# carries the data's content hash, so it also tells two folders of images apart).
SAME_BUILD_KEYS = ("format", "space", "dataset", "image_size", "training", "seed", "rfid_features")
FINISHED_STATUS = "completed"


def finished_rows(frame: pd.DataFrame) -> pd.Series:
    """Which rows of a table are finished architectures: trained through every iteration without a fault.
    The one rule for a build's count, its merge, its exit code and what a later build reuses."""
    if not len(frame):
        return pd.Series([], dtype=bool)
    return (frame["status"] == FINISHED_STATUS) & frame["rfid_final"].notna()


@dataclass(frozen=True)
class ReusedRows:
    """Rows of an earlier table that a build takes as they are.

    Example:
        >>> empty = ReusedRows.none()
        >>> len(empty.frame), empty.arch_jsons, empty.build_wall_seconds
        (0, frozenset(), 0.0)
    """

    frame: pd.DataFrame  # finished rows of architectures this build would train, table columns
    source: str | None  # the table they came from
    build_wall_seconds: float  # the earlier build's recorded wall time (its share of this table's)

    @classmethod
    def none(cls) -> ReusedRows:
        return cls(pd.DataFrame(), None, 0.0)

    @property
    def arch_jsons(self) -> frozenset[str]:
        """The ``arch`` column's JSON of every reused row (the architectures not to train)."""
        return frozenset(self.frame["arch"]) if len(self.frame) else frozenset()


def reused_rows(
    path: str | None,
    wanted: dict[str, Any],
    archs: list[dict[str, Any]],
    own: bool = False,
) -> ReusedRows:
    """The finished rows of table ``path`` for architectures in ``archs``, checked to be the same build.

    ``wanted`` is the new build's metadata. Unfinished or failed rows are not taken (they train again).
    ``own``: ``path`` is the table the build's own folder holds (a resumed build), not ``--reuse-table``.

    Raises:
        DiffNASError: when ``path`` is not a build-table table, or one of another build, naming what differs.
    """
    if path is None:
        return ReusedRows.none()
    metadata = read_table_metadata(path)
    if metadata is None:
        raise DiffNASError(
            f"--reuse-table {path!r} is not a table written by 'ray-diffnas build-table' (a Parquet file with "
            f"the build's record in its metadata); pass the table.parquet of an earlier build."
        )
    differ = [key for key in SAME_BUILD_KEYS if _normal(metadata.get(key)) != _normal(wanted.get(key))]
    if differ:
        shown = "; ".join(f"{key}: {metadata.get(key)!r} there, {wanted.get(key)!r} here" for key in differ)
        if own:  # the same options, other results: e.g. a package update changed a default the metadata records
            raise DiffNASError(
                f"{path!r}, the table of the build this run resumes, was built differently ({shown}); this run's "
                f"rows would not compare with it. Build into another --output (with --reuse-table {path!r} where "
                f"its rows still compare), or finish this build with the release that started it."
            )
        raise DiffNASError(
            f"--reuse-table {path!r} was built differently ({shown}); its rows would not compare with this "
            f"build's. Reuse a table of the same options, or drop --reuse-table."
        )
    frame = read_frame(path)
    chosen = {json.dumps(arch, sort_keys=True) for arch in archs}
    finished = frame[finished_rows(frame) & frame["arch"].isin(chosen)]
    seconds = float(metadata.get("build_wall_seconds") or 0.0)
    return ReusedRows(finished.reset_index(drop=True), str(Path(path)), seconds)


def _normal(value: Any) -> Any:
    """Compares JSON values as JSON (tuples and lists alike)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))
