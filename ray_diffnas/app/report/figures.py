"""The report's figures, as PNG bytes: RFID curves with ASHA's rungs, RFID against cost with the Pareto
front, sample grids, and the best UNet drawn level by level."""

from __future__ import annotations

import io
from typing import Any, Sequence

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from ray_diffnas.app.plots import agg_figure, image_grid_figure, pareto_front
from ray_diffnas.searchers.memory import SCORED
from ray_diffnas.spaces.unet_arch import UNetArch

STATUS_COLORS = {"completed": "tab:green", "stopped": "tab:orange", "failed": "tab:red", "unfinished": "tab:gray"}
DPI = 110


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (matplotlib's Agg canvas: no display, no global backend)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def curves_figure(trials: pd.DataFrame, rungs: list[int]) -> bytes:
    """RFID after each iteration, one line per trial coloured by its status, ASHA's rungs dashed."""
    fig = agg_figure(7.5, 3.8)
    ax = fig.subplots()
    for _, trial in trials.iterrows():
        curve = list(trial["rfid_curve"])
        if curve:
            color = STATUS_COLORS.get(trial["status"], "tab:gray")
            ax.plot(range(1, len(curve) + 1), curve, marker="o", ms=3, lw=1, color=color, alpha=0.8)
    for rung in rungs:
        ax.axvline(rung, color="k", ls="--", lw=0.7, alpha=0.5)
    handles = [ax.plot([], [], color=c, label=s)[0] for s, c in STATUS_COLORS.items()]
    if rungs:
        handles.append(ax.plot([], [], color="k", ls="--", lw=0.7, label="ASHA rung")[0])
    ax.legend(handles=handles, fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="iteration", ylabel="RFID (lower is better)", title="RFID of every trial after each iteration")
    fig.tight_layout()
    return png(fig)


COSTS_SHOWN = ("latency_ms", "params_m")  # what a search's report draws RFID against, besides what it traded
COST_LABELS = {"latency_ms": "latency (ms, batch 1)", "params_m": "parameters (millions)", "gflops": "GFLOPs per image"}


def cost_figure(trials: pd.DataFrame, costs: Sequence[str] = COSTS_SHOWN) -> bytes:
    """Best RFID against each cost, each with the Pareto front of the trials that finished."""
    fig = agg_figure(5 * len(costs), 3.8)
    scored = trials.dropna(subset=["best_rfid"])
    axes = fig.subplots(1, len(costs), squeeze=False)[0]
    for ax, column in zip(axes, costs):
        label = COST_LABELS.get(column, column)
        for status, group in scored.groupby("status"):
            ax.scatter(group[column], group["best_rfid"], s=22, color=STATUS_COLORS.get(status, "k"), label=status)
        usable = scored[scored["status"].isin(SCORED)].dropna(subset=[column])
        if len(usable):
            cost, rfid = usable[column].to_numpy(), usable["best_rfid"].to_numpy()
            front = pareto_front(cost, rfid)
            ax.plot(cost[front], rfid[front], color="tab:blue", lw=1, label="Pareto front")
        ax.set(xlabel=label, ylabel="best RFID", title=f"RFID against {label.split(' (')[0]}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return png(fig)


def samples_figure(images: Any, title: str) -> bytes:
    """A grid of generated images in [-1, 1], shape (N, C, H, W), sized for the report's row of three."""
    return png(image_grid_figure(images, title, width=3.2, height=3.4))


def unet_figure(arch: UNetArch, image_size: int) -> bytes:
    """The UNet's levels left to right, down then up: each box's height is the level's channels, its label
    the feature-map size, channels and residual blocks; attention is marked."""
    levels = len(arch.channel_mult)
    widths = [arch.base_channels * m for m in arch.channel_mult]
    sizes = [image_size // 2**i for i in range(levels)]
    # (height, label, attention, colour) of each box: the encoder, the middle, the decoder (one block more)
    boxes = [
        (widths[i], f"{sizes[i]}px\n{widths[i]} ch\n{arch.num_res_blocks[i]} blk",
         sizes[i] in arch.attention_resolutions, "#e4ecd9")
        for i in range(levels)
    ]  # fmt: skip
    boxes.append((widths[-1], "middle\n2 blk", arch.mid_attention, "#c9d9ef"))
    boxes += [
        (widths[i], f"{sizes[i]}px\n{widths[i]} ch\n{arch.num_res_blocks[i] + 1} blk",
         sizes[i] in arch.attention_resolutions, "#f3e3cf")
        for i in reversed(range(levels))
    ]  # fmt: skip
    tallest = max(widths)
    fig = agg_figure(8, 3.4)
    ax = fig.subplots()
    for x, (channels, label, attention, color) in enumerate(boxes):
        height = channels / tallest
        y = 1 - height  # boxes hang from a common top line
        ax.add_patch(Rectangle((x + 0.1, y), 0.8, height, facecolor=color, edgecolor="k", lw=0.8))
        ax.text(x + 0.5, y + height / 2, label, ha="center", va="center", fontsize=7)
        if attention:
            ax.text(x + 0.5, y - 0.08, "attention", ha="center", va="top", fontsize=7, color="tab:purple")
    for x in range(levels):  # the skip connections between a level's encoder and decoder
        ax.annotate("", xy=(len(boxes) - 1 - x + 0.5, 1.04), xytext=(x + 0.5, 1.04),
                    arrowprops={"arrowstyle": "->", "color": "0.5", "lw": 0.7,
                                "connectionstyle": "arc3,rad=-0.15"})  # fmt: skip
    ax.set_xlim(0, len(boxes))
    ax.set_ylim(-0.25, 1.35)
    ax.set_axis_off()
    ax.set_title(f"{arch.key()}  (encoder, middle, decoder; heads {arch.num_heads}, dropout {arch.dropout:g})",
                 fontsize=8)  # fmt: skip
    fig.tight_layout()
    return png(fig)
