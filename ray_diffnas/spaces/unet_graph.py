"""A UNet architecture as a graph: its encoder's stages in order, as the graph diffusion model sees it.

Nodes, in the order data flows: the stem (class = base channels), one node per resolution level
(class = its channel multiplier, residual blocks and whether it has self-attention; a level
halves the resolution of the one before), the bottleneck (with or without attention) and a head
node (attention heads and dropout). Edge ``i -> i+1`` ("next") joins consecutive stages. The
decoder mirrors the encoder, so it adds no choices and no nodes. Every valid architecture
round-trips exactly (an attention-free one whose head count lies outside the space's choices
comes back with the first choice: the same network, the same key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch_geometric.data import Data

from ray_diffnas.errors import ConfigError
from ray_diffnas.spaces.graphs import graph_edges, make_graph
from ray_diffnas.spaces.unet_arch import UNetArch

if TYPE_CHECKING:
    from ray_diffnas.spaces.unet_space import UNetSpace


def node_classes(space: UNetSpace) -> list[str]:
    c = space.choices
    names = [f"stem:c{b}" for b in c["base_channels"]]
    names += [
        f"level:m{m}:r{r}:{attn}" for m in c["channel_mult"] for r in c["num_res_blocks"] for attn in ("conv", "attn")
    ]
    names += ["mid", "mid+attn"]
    names += list(_head_classes(space))
    return names


def _head_classes(space: UNetSpace) -> dict[str, tuple[int, float]]:
    """Head node names -> (attention heads, dropout); ``repr`` keeps every dropout value apart."""
    c = space.choices
    return {f"head:h{h}:d{d!r}": (h, d) for h in c["num_heads"] for d in c["dropout"]}


def max_nodes(space: UNetSpace) -> int:
    return 1 + max(space.choices["num_levels"]) + 2


def encode(space: UNetSpace, arch: UNetArch) -> Data:
    names = {name: i for i, name in enumerate(node_classes(space))}
    sizes = arch.resolutions(space.image_size)
    nodes = [names[f"stem:c{arch.base_channels}"]]
    for level, (mult, blocks) in enumerate(zip(arch.channel_mult, arch.num_res_blocks)):
        attn = "attn" if sizes[level] in arch.attention_resolutions else "conv"
        nodes.append(names[f"level:m{mult}:r{blocks}:{attn}"])
    nodes.append(names["mid+attn" if arch.mid_attention else "mid"])
    # Without attention the head count changes nothing (validate does not check it): a value
    # outside the space's choices is written as the first choice, so the key still round-trips.
    heads = arch.num_heads if arch.num_heads in space.choices["num_heads"] else space.choices["num_heads"][0]
    nodes.append(names[f"head:h{heads}:d{arch.dropout!r}"])
    return make_graph(nodes, [(i, i + 1, 1) for i in range(len(nodes) - 1)])


def decode(space: UNetSpace, graph: Data) -> UNetArch | None:
    """The architecture of a well-formed graph inside ``space``, else None."""
    names = node_classes(space)
    labels = [names[c] for c in graph.x.tolist()]
    n = len(labels)
    if n < 5 or graph_edges(graph) != {(i, i + 1, 1) for i in range(n - 1)}:
        return None
    stem, levels, mid, head = labels[0], labels[1:-2], labels[-2], labels[-1]
    if not stem.startswith("stem:") or not head.startswith("head:") or mid not in ("mid", "mid+attn"):
        return None
    if not all(label.startswith("level:") for label in levels):
        return None
    parsed = [label.split(":") for label in levels]  # level, m<mult>, r<blocks>, conv|attn
    sizes = [space.image_size // 2**level for level in range(len(levels))]
    heads, dropout = _head_classes(space)[head]
    values: dict[str, Any] = {
        "base_channels": int(stem.split(":c")[1]),
        "channel_mult": [int(m[1:]) for _, m, _, _ in parsed],
        "num_res_blocks": [int(r[1:]) for _, _, r, _ in parsed],
        "attention_resolutions": [size for size, (_, _, _, attn) in zip(sizes, parsed) if attn == "attn"],
        "num_heads": heads,
        "dropout": dropout,
        "mid_attention": mid == "mid+attn",
    }
    try:
        return space.validate(values)
    except ConfigError:
        return None
