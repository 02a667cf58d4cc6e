"""The table trainable: a Tune trial that answers a query by looking its architecture up.

This module is what trials unpickle: it imports nothing heavy (no torch, not even the space
until a config needs it), so a Tune worker that only looks rows up starts in about a second.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

from ray_diffnas.errors import DiffNASError


class TableLookup:
    """What a trial needs to answer a query: rows by key, and how to turn a config into a key.

    Picklable and light: configs whose ``arch`` is an architecture's own ``to_dict()`` (what
    Tune's random search and the project's searchers send) are found through an alias without
    the space; any other config (a flat config, an equivalent spelling) rebuilds the space on
    first use and validates with it.

    Example:
        >>> import pandas as pd
        >>> from ray_diffnas.spaces.nb201 import NB201Space
        >>> cell = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
        >>> from ray_diffnas.bench.table import load_table
        >>> lookup = load_table(pd.DataFrame({"arch": [cell], "acc": [90.5]}), NB201Space()).lookup()
        >>> ops = ["nor_conv_3x3", "none", "skip_connect", "skip_connect", "none", "avg_pool_3x3"]
        >>> lookup.query({"arch": {"ops": ops}})
        ('|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|avg_pool_3x3~2|', {'acc': 90.5})
    """

    def __init__(
        self,
        rows: Mapping[str, Mapping[str, float]],
        aliases: Mapping[str, str],
        space: Any,
        columns: tuple[str, ...],
        flat_names: tuple[str, ...] = (),
    ) -> None:
        self.rows = dict(rows)
        self.aliases = dict(aliases)
        self.space_dict = space if isinstance(space, Mapping) else space.to_dict()
        self.columns = tuple(columns)
        self.flat_names = tuple(flat_names)
        self._space = None if isinstance(space, Mapping) else space

    def __getstate__(self) -> dict[str, Any]:
        # The space object pulls in torch when unpickled; trials rebuild it only if they need it.
        return {**self.__dict__, "_space": None}

    @property
    def space(self) -> Any:
        if self._space is None:
            from ray_diffnas.spaces.registry import space_from_dict

            self._space = space_from_dict(self.space_dict)
        return self._space

    def key(self, config: Mapping[str, Any]) -> str | None:
        """The canonical key of the architecture a trial config holds (``arch`` or flat choices);
        None when the config is not an architecture of the space."""
        if "arch" in config or self.flat_names:
            shown = config["arch"] if "arch" in config else {n: config.get(n) for n in self.flat_names}
            key = self.aliases.get(table_alias(shown))
            if key is not None:
                return key
        if "arch" not in config and not hasattr(self.space, "from_flat"):
            return None  # neither an architecture nor the flat form of one
        try:
            arch = self.space.validate(config["arch"]) if "arch" in config else self.space.from_flat(config)
        except DiffNASError:  # not an architecture of the space: not in the table
            return None
        return arch.key()

    def query(self, config: Mapping[str, Any]) -> tuple[str | None, dict[str, float]]:
        """The key and the row's metrics; NaN for every metric when the table has no such row."""
        key = self.key(config)
        row = self.rows.get(key) if key is not None else None
        return key, dict(row) if row is not None else {c: math.nan for c in self.columns}


def lookup_trainable(config: dict[str, Any], lookup: TableLookup) -> None:
    """The Tune function trainable of a tabular benchmark: one table lookup, reported once.

    Pass the table with ``tune.with_parameters(lookup_trainable, lookup=table.lookup())`` (it
    goes through the object store once per run, not once per trial).
    """
    from ray import tune

    _, metrics = lookup.query(config)
    tune.report(metrics)


def replay_trainable(
    config: dict[str, Any], lookup: TableLookup, curve: tuple[str, ...], hidden: tuple[str, ...], metric: str
) -> None:
    """The trainable of an ASHA replay: reports the row's curve (``curve`` columns) one iteration at a
    time as ``metric``, beside the row's other columns except ``hidden`` (those that tell the final value).
    A query outside the table reports NaN once."""
    from ray import tune

    key, row = lookup.query(config)
    shown = {name: value for name, value in row.items() if name not in hidden}
    for column in curve if key in lookup.rows else curve[:1]:
        tune.report({**shown, metric: row.get(column, math.nan)})


def table_alias(values: Any) -> str:
    return json.dumps(values, sort_keys=True, default=str)
