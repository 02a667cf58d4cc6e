"""UNetSpace: the set of UNet architectures a search may propose, and its Tune param space."""

from __future__ import annotations

import json
import numbers
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ray_diffnas.errors import ConfigError
from ray_diffnas.spaces.unet_arch import MAX_LEVELS, MIN_LEVELS, UNetArch
from ray_diffnas.spaces.unet_flops import unet_gflops

if TYPE_CHECKING:  # torch-geometric is imported only when a graph is asked for
    from torch_geometric.data import Data


class UNetSpace:
    """The choices open to an architecture search, for one image size.

    Every architecture in the space is a valid :class:`UNetArch`; the space adds which values
    each field may take. It turns into a Tune ``param_space``, a JSON schema and a
    plain-language description (what an LLM searcher reads).

    It is also a :class:`~ray_diffnas.spaces.protocol.GraphSpace`: :meth:`encode` / :meth:`decode`
    turn an architecture into a graph of its blocks and back.

    Example:
        >>> space = UNetSpace(image_size=16, base_channels=(16, 32), num_levels=(2, 3))
        >>> arch = space.sample(np.random.default_rng(0))
        >>> space.validate(arch.to_dict()) == arch
        True
        >>> sorted(space.param_space(dataset="mnist"))[:3]
        ['arch', 'batch_size', 'data_root']
    """

    kind = "unet"

    def __init__(
        self,
        image_size: int = 32,
        *,
        base_channels: Sequence[int] = (8, 16, 24, 32),
        channel_mults: Sequence[int] = (1, 2, 3, 4),
        num_levels: Sequence[int] | None = None,
        num_res_blocks: Sequence[int] = (1, 2),
        attention_max_resolution: int = 8,
        num_heads: Sequence[int] = (1, 2, 4),
        dropout: Sequence[float] = (0.0, 0.1),
        mid_attention: Sequence[bool] = (False, True),
        min_resolution: int = 2,
        first_mult_is_one: bool = True,
        max_gflops: float | None = None,
    ) -> None:
        """Args:
        image_size: Side of the (square) training images, in pixels.
        base_channels: Allowed channels of the first level (multiples of 8).
        channel_mults: Allowed per-level channel multipliers.
        num_levels: Allowed level counts (2-5); default: every count whose lowest level
            is at least ``min_resolution`` pixels.
        num_res_blocks: Allowed residual blocks per level.
        attention_max_resolution: Largest feature-map size that may get self-attention.
        num_heads: Allowed attention head counts.
        dropout: Allowed dropout rates.
        mid_attention: Whether the bottleneck may / must have attention.
        min_resolution: Smallest feature-map size of the default level counts.
        first_mult_is_one: Fix ``channel_mult[0] = 1`` (as DDPM and EDM do), so that
            ``base_channels`` alone sets the full-resolution width: no two records describe
            the same network, and the costliest level stays narrow.
        max_gflops: A bound on the cost of one denoiser forward on one image
            (:func:`~ray_diffnas.spaces.unet_flops.unet_gflops`, the ``gflops`` trials report):
            costlier architectures are outside the space. A trial's time grows with it, so the
            bound caps the slowest trial a search can start. None: no bound.
        """
        if not isinstance(image_size, numbers.Integral) or isinstance(image_size, bool) or image_size < 4:
            raise ConfigError(f"image_size must be an integer >= 4, but got {image_size!r}.")
        if image_size % 2:
            raise ConfigError(
                f"image_size must be even (a UNet halves it at least once, for 2 levels), but got {image_size}; "
                f"resize the images, e.g. --image-size {image_size + 1}."
            )
        self.image_size: int = int(image_size)
        image_size = self.image_size
        base_channels = _choices("base_channels", base_channels, int, 8, 1024)
        channel_mults = _choices("channel_mults", channel_mults, int, 1, 16)
        num_res_blocks = _choices("num_res_blocks", num_res_blocks, int, 1, 8)
        num_heads = _choices("num_heads", num_heads, int, 1, 64)
        dropout = _choices("dropout", dropout, float, 0.0, 0.99)
        mid_attention = _choices("mid_attention", mid_attention, bool, False, True)
        if num_levels is not None:
            num_levels = _choices("num_levels", num_levels, int, MIN_LEVELS, MAX_LEVELS)
        if num_levels is None:
            num_levels = [
                n
                for n in range(MIN_LEVELS, MAX_LEVELS + 1)
                if image_size % 2 ** (n - 1) == 0 and image_size // 2 ** (n - 1) >= min_resolution
            ] or [MIN_LEVELS]
        self.choices: dict[str, list[Any]] = {
            "base_channels": sorted(base_channels),
            "channel_mult": sorted(channel_mults),
            "num_levels": sorted(num_levels),
            "num_res_blocks": sorted(num_res_blocks),
            "attention_resolutions": [
                r
                for r in _all_resolutions(image_size, max(num_levels or [MIN_LEVELS]))
                if r <= attention_max_resolution
            ],
            "num_heads": sorted(num_heads),
            "dropout": sorted(dropout),
            "mid_attention": sorted(set(mid_attention)),
        }
        self.attention_max_resolution: int = attention_max_resolution
        self.min_resolution: int = min_resolution
        self.first_mult_is_one: bool = first_mult_is_one
        if max_gflops is not None and not (isinstance(max_gflops, numbers.Real) and max_gflops > 0):
            raise ConfigError(f"max_gflops must be a number > 0 (or None for no bound), but got {max_gflops!r}.")
        self.max_gflops: float | None = None if max_gflops is None else float(max_gflops)
        self._check_choices()

    def _check_choices(self) -> None:
        if self.first_mult_is_one and 1 not in self.choices["channel_mult"]:
            raise ConfigError(
                "first_mult_is_one=True needs 1 among channel_mults; add it or pass first_mult_is_one=False."
            )
        bad_levels = [n for n in self.choices["num_levels"] if self.image_size % 2 ** (n - 1)]  # range: _choices
        if bad_levels:
            raise ConfigError(
                f"num_levels {bad_levels} are not possible for image_size {self.image_size}: "
                f"levels must be in [{MIN_LEVELS}, {MAX_LEVELS}] and image_size divisible by "
                f"2**(levels - 1)."
            )
        # Every corner of the space must be a buildable UNet.
        for base in self.choices["base_channels"]:
            UNetArch.from_dict(
                {
                    "base_channels": base,
                    "channel_mult": [max(self.choices["channel_mult"])] * 2,
                    "num_res_blocks": 1,
                    "attention_resolutions": [],
                    "mid_attention": False,
                },
                self.image_size,
            )
        if self.max_gflops is not None and self._gflops(self.cheapest()) > self.max_gflops:
            raise ConfigError(
                f"No architecture of this space costs at most max_gflops={self.max_gflops:g} GFLOPs per image: "
                f"the cheapest ({self.cheapest().key()}) costs {self._gflops(self.cheapest()):.4f}; "
                f"raise max_gflops, or allow smaller base_channels."
            )

    def cheapest(self) -> UNetArch:
        """The space's least costly architecture: narrowest, all multipliers and blocks at their least,
        no attention, at whichever level count costs least (a deeper UNet moves its bottleneck blocks
        to smaller feature maps, so it can cost less)."""
        c = self.choices
        first = 1 if self.first_mult_is_one else c["channel_mult"][0]
        candidates = [
            UNetArch.from_dict(
                {
                    "base_channels": c["base_channels"][0],
                    "channel_mult": [first] + [c["channel_mult"][0]] * (levels - 1),
                    "num_res_blocks": [c["num_res_blocks"][0]] * levels,
                    "attention_resolutions": [],
                    "num_heads": c["num_heads"][0],
                    "dropout": c["dropout"][0],
                    "mid_attention": False,
                },
                self.image_size,
            )
            for levels in c["num_levels"]
        ]
        return min(candidates, key=self._gflops)

    def _gflops(self, arch: UNetArch) -> float:
        return unet_gflops(arch, self.image_size)

    # --- membership -----------------------------------------------------------------------

    def validate(self, values: Mapping[str, Any]) -> UNetArch:
        """Checks an architecture is valid *and* inside this space.

        Raises:
            ConfigError: naming each field outside the space, its value and the allowed values.
        """
        arch = UNetArch.from_dict(values, self.image_size)
        problems = []
        c = self.choices
        if arch.base_channels not in c["base_channels"]:
            problems.append(f"base_channels={arch.base_channels} is not allowed; allowed values: {c['base_channels']}.")
        if arch.num_levels not in c["num_levels"]:
            problems.append(f"channel_mult has {arch.num_levels} levels; allowed level counts: {c['num_levels']}.")
        for name, allowed in (("channel_mult", c["channel_mult"]), ("num_res_blocks", c["num_res_blocks"])):
            outside = [v for v in getattr(arch, name) if v not in allowed]
            if outside:
                problems.append(f"{name} values {outside} are not allowed; allowed values: {allowed}.")
        if self.first_mult_is_one and arch.channel_mult[0] != 1:
            problems.append(
                f"channel_mult[0]={arch.channel_mult[0]} is not allowed; in this space the first level's "
                f"multiplier is 1 (base_channels sets its width)."
            )
        outside = [r for r in arch.attention_resolutions if r not in c["attention_resolutions"]]
        if outside:
            problems.append(
                f"attention_resolutions {outside} are not allowed; allowed values: {c['attention_resolutions']}."
            )
        checked = ("num_heads", "dropout", "mid_attention") if arch.has_attention else ("dropout", "mid_attention")
        for name in checked:
            if getattr(arch, name) not in c[name]:
                problems.append(f"{name}={getattr(arch, name)!r} is not allowed; allowed values: {c[name]}.")
        if self.max_gflops is not None and not problems and self._gflops(arch) > self.max_gflops:
            problems.append(
                f"it costs {self._gflops(arch):.3f} GFLOPs per image, above this space's bound "
                f"max_gflops={self.max_gflops:g}; use fewer or narrower levels or blocks, or less attention."
            )
        if problems:
            raise ConfigError("Architecture outside the search space:\n  - " + "\n  - ".join(problems))
        return arch

    @staticmethod
    def field_names() -> list[str]:
        return UNetArch.field_names()

    def key(self, values: Mapping[str, Any] | UNetArch) -> str:
        """Canonical key of an architecture (validated against the space)."""
        arch = values if isinstance(values, UNetArch) else self.validate(values)
        return arch.key()

    # --- sampling -------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> UNetArch:
        """Draws one architecture uniformly per field (attention: each allowed size with p=0.3); with
        ``max_gflops``, draws again until one is within the bound.

        Raises:
            ConfigError: when 1,000 draws found none within ``max_gflops`` (a bound that leaves
                almost nothing of the space).
        """
        if self.max_gflops is None:
            return self._draw(rng)
        for _ in range(1000):
            try:  # a draw is in the space by construction: only the bound can reject it
                return self._draw(rng)
            except ConfigError:
                continue
        raise ConfigError(
            f"1,000 random architectures of this space all cost more than max_gflops={self.max_gflops:g} "
            f"GFLOPs per image (the cheapest costs {self._gflops(self.cheapest()):.4f}); raise max_gflops."
        )

    def _draw(self, rng: np.random.Generator) -> UNetArch:
        c = self.choices
        levels = int(rng.choice(c["num_levels"]))
        base = int(rng.choice(c["base_channels"]))
        mult = sorted(int(rng.choice(c["channel_mult"])) for _ in range(levels))  # widen with depth
        if self.first_mult_is_one:
            mult[0] = 1
        sizes = _all_resolutions(self.image_size, levels)
        attention = [r for r in sizes if r in c["attention_resolutions"] and rng.random() < 0.3]
        mid = bool(rng.choice(c["mid_attention"]))
        attended = [base * mult[sizes.index(r)] for r in attention] + ([base * mult[-1]] if mid else [])
        heads = [h for h in c["num_heads"] if all(ch % h == 0 for ch in attended)]
        if not heads:  # no allowed head count fits these widths: go without attention
            attention, mid, heads = [], False, c["num_heads"]
        return self.validate(
            {
                "base_channels": base,
                "channel_mult": mult,
                "num_res_blocks": [int(rng.choice(c["num_res_blocks"])) for _ in range(levels)],
                "attention_resolutions": attention,
                "num_heads": int(rng.choice(heads)),
                "dropout": float(rng.choice(c["dropout"])),
                "mid_attention": mid,
            }
        )

    def mutate(self, arch: UNetArch, rng: np.random.Generator) -> UNetArch:
        """Changes one field to a neighbouring value inside the space (see :mod:`ray_diffnas.spaces.unet_mutation`)."""
        from ray_diffnas.spaces.unet_mutation import mutate

        return mutate(arch, self, rng)

    # --- the whole space, and its flat form (see ray_diffnas.spaces.unet_enumeration) ------------

    def enumerate(self) -> list[UNetArch]:
        """Every architecture of the space, once each, sorted by key (for spaces of a handful of
        values per field: a default space is far too large and raises a ConfigError)."""
        from ray_diffnas.spaces.unet_enumeration import enumerate_space

        return enumerate_space(self)

    def flat_choices(self) -> dict[str, list[Any]]:
        """One categorical choice per field and level (what Optuna's samplers search)."""
        from ray_diffnas.spaces.unet_enumeration import flat_choices

        return flat_choices(self)

    def from_flat(self, values: Mapping[str, Any]) -> UNetArch:
        """The architecture a flat config (see :meth:`flat_choices`) names."""
        from ray_diffnas.spaces.unet_enumeration import from_flat

        return from_flat(self, values)

    # --- graph encoding (the GraphSpace protocol, see ray_diffnas.spaces.unet_graph) -------------------

    @property
    def node_classes(self) -> list[str]:
        from ray_diffnas.spaces import unet_graph

        return unet_graph.node_classes(self)

    edge_classes = ["none", "next"]

    @property
    def max_nodes(self) -> int:
        from ray_diffnas.spaces import unet_graph

        return unet_graph.max_nodes(self)

    def encode(self, values: Mapping[str, Any] | UNetArch) -> Data:
        """The architecture as a graph of its encoder blocks (exact round trip with :meth:`decode`)."""
        arch = values if isinstance(values, UNetArch) else self.validate(values)
        from ray_diffnas.spaces import unet_graph

        return unet_graph.encode(self, arch)

    def decode(self, graph: Data) -> UNetArch | None:
        """The architecture a graph describes, or None for a graph that is not one of this space."""
        from ray_diffnas.spaces import unet_graph

        return unet_graph.decode(self, graph)

    def param_space(self, dataset: str = "mnist", data_root: str | None = None, **training: Any) -> dict[str, Any]:
        """A Tune ``param_space``: a sampled architecture plus the trial's training settings.

        ``arch`` is an :class:`ArchDomain`: Tune's random search draws it by :meth:`sample` with its
        own random state (``BasicVariantGenerator(random_state=...)`` makes a search reproducible);
        the project's searchers propose it instead. ``space`` carries the space as plain JSON.

        Args:
            dataset: Data set name (see :func:`ray_diffnas.data.datasets.load_dataset`).
            data_root: Path for data sets read from disk.
            **training: Overrides of :class:`TrainingSettings` fields (values or Tune domains).
        """
        from ray_diffnas.spaces.domain import ArchDomain
        from ray_diffnas.trainable.settings import TrainingSettings

        config = {
            **TrainingSettings().to_dict(),
            "dataset": dataset,
            "data_root": data_root,
            "image_size": self.image_size,
        }
        unknown = sorted(set(training) - set(config))
        if unknown:
            raise ConfigError(f"Unknown training setting(s) {unknown}; known settings: {sorted(config)}.")
        config.update(training)
        config["arch"] = ArchDomain(self)
        config["space"] = self.to_dict()
        return config

    # --- descriptions for people and LLMs -----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The space's constructor arguments, JSON-able (``UNetSpace.from_dict`` inverts it)."""
        c = self.choices
        return {
            "kind": self.kind,
            "image_size": self.image_size,
            "base_channels": c["base_channels"],
            "channel_mults": c["channel_mult"],
            "num_levels": c["num_levels"],
            "num_res_blocks": c["num_res_blocks"],
            "attention_max_resolution": self.attention_max_resolution,
            "num_heads": c["num_heads"],
            "dropout": c["dropout"],
            "mid_attention": c["mid_attention"],
            "min_resolution": self.min_resolution,
            "first_mult_is_one": self.first_mult_is_one,
            # only when set: the dicts of spaces without a bound (saved in tables and trials) stay as they were
            **({} if self.max_gflops is None else {"max_gflops": self.max_gflops}),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> UNetSpace:
        values = {k: v for k, v in values.items() if k != "kind"}
        return cls(values.pop("image_size"), **values)

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of one architecture in this space (for structured LLM output).

        One variant per level count, so that the lengths of ``channel_mult`` and
        ``num_res_blocks`` and the attention sizes a model has are part of the schema: a
        grammar-constrained decoder (llama.cpp) cannot produce a structurally invalid answer.
        """
        variants = [self._schema_for_levels(levels) for levels in self.choices["num_levels"]]
        return variants[0] if len(variants) == 1 else {"title": "UNetArch", "anyOf": variants}

    def _schema_for_levels(self, levels: int) -> dict[str, Any]:
        c = self.choices
        mult = {"type": "integer", "enum": c["channel_mult"]}
        first = {"const": 1} if self.first_mult_is_one else mult
        sizes = [r for r in _all_resolutions(self.image_size, levels) if r in c["attention_resolutions"]]
        # No attention at these levels: the empty list as a constant. "maxItems": 0 alone would leave the items
        # open, and llama.cpp's grammar (the local LLM's) then lets any JSON through, so every proposal failed.
        attention: dict[str, Any] = {"type": "array", "uniqueItems": True, "maxItems": len(sizes)}
        if sizes:
            attention["items"] = {"type": "integer", "enum": sizes}
        else:
            attention["const"] = []
        return {
            "title": f"UNetArch with {levels} levels",
            "type": "object",
            "additionalProperties": False,
            "required": UNetArch.field_names(),
            "properties": {
                "base_channels": {"type": "integer", "enum": c["base_channels"]},
                "channel_mult": _fixed_array([first] + [mult] * (levels - 1)),
                "num_res_blocks": _fixed_array([{"type": "integer", "enum": c["num_res_blocks"]}] * levels),
                "attention_resolutions": attention,
                "num_heads": {"type": "integer", "enum": c["num_heads"]},
                "dropout": {"type": "number", "enum": c["dropout"]},
                "mid_attention": {"type": "boolean", "enum": c["mid_attention"]},
            },
        }

    def describe(self) -> str:
        """A plain-language description of the space (what each field means and may be)."""
        c = self.choices
        return "\n".join(
            [
                f"A UNet denoiser for {self.image_size}x{self.image_size} images in a diffusion model.",
                "Level i works at image_size / 2**i pixels; the number of levels is len(channel_mult).",
                f"- base_channels: channels of the first level; one of {c['base_channels']}.",
                f"- channel_mult: one multiplier of base_channels per level; {c['num_levels']} levels, "
                f"each entry one of {c['channel_mult']}"
                + ("; the first entry is always 1." if self.first_mult_is_one else "."),
                f"- num_res_blocks: residual blocks per level, same length as channel_mult; "
                f"entries in {c['num_res_blocks']}.",
                f"- attention_resolutions: feature-map sizes (pixels) that get self-attention; a subset of "
                f"{c['attention_resolutions']} restricted to the sizes the model has.",
                f"- num_heads: attention heads, one of {c['num_heads']}; must divide the channels of attention levels.",
                f"- dropout: dropout in residual blocks, one of {c['dropout']}.",
                f"- mid_attention: self-attention in the bottleneck, one of {c['mid_attention']}.",
                "Wider and deeper models fit better but train and sample slower; attention at large "
                "feature maps is expensive.",
                *(
                    []
                    if self.max_gflops is None
                    else [
                        f"- cost bound: one forward pass on one image may cost at most {self.max_gflops:g} GFLOPs; "
                        f"costlier architectures are rejected."
                    ]
                ),
                "An architecture's key reads c=base_channels, m=channel_mult, r=num_res_blocks, "
                "a=attention_resolutions, h=num_heads, d=dropout, mid=mid_attention.",
            ]
        )

    def __repr__(self) -> str:
        return f"UNetSpace({json.dumps(self.to_dict())})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UNetSpace) and self.to_dict() == other.to_dict()


def _choices(name: str, values: Sequence[Any], kind: type, low: Any, high: Any) -> list[Any]:
    """Checks and normalises one constructor argument's allowed values (numpy scalars included)."""
    try:
        items = list(values)
    except TypeError:
        raise ConfigError(f"UNetSpace {name} must be a list of values, but got {values!r}.") from None
    normalized = []
    for value in items:
        ok = (
            isinstance(value, (bool, np.bool_))
            if kind is bool
            else (
                isinstance(value, numbers.Real)
                and not isinstance(value, (bool, np.bool_))
                and (kind is float or float(value).is_integer())
            )
        )
        if not ok or not low <= kind(value) <= high:
            raise ConfigError(f"UNetSpace {name} must hold {kind.__name__}s in [{low}, {high}], but got {value!r}.")
        normalized.append(kind(value))
    if not normalized and name != "attention_resolutions":
        raise ConfigError(f"UNetSpace {name} is empty; give at least one value.")
    return sorted(set(normalized))


def _fixed_array(items: list[dict[str, Any]]) -> dict[str, Any]:
    """An array of exactly ``len(items)`` entries, entry i matching ``items[i]``."""
    return {"type": "array", "prefixItems": items, "items": False, "minItems": len(items), "maxItems": len(items)}


def _all_resolutions(image_size: int, levels: int) -> list[int]:
    return [image_size // 2**level for level in range(levels) if image_size % 2**level == 0]
