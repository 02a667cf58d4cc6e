"""Figures of a search: best RFID over trials, RFID against latency, samples of the best model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from ray_diffnas.searchers.pareto import non_dominated


def pareto_front(cost: np.ndarray, rfid: np.ndarray) -> np.ndarray:
    """Indices of the trials no other trial beats on both cost and RFID (both lower is better), by cost."""
    measured = np.flatnonzero(np.isfinite(cost) & np.isfinite(rfid))  # a trial without either is on no front
    front = measured[non_dominated(np.column_stack([cost[measured], rfid[measured]]))]
    return front[np.lexsort((rfid[front], cost[front]))]


def plot_search(frame: pd.DataFrame, path: Path) -> Path:
    """``search.png``: best RFID so far against trials (in start order), and RFID against latency."""
    scored = frame.dropna(subset=["best_rfid"])
    if "started" in scored:  # results_frame's start times (tables written before 2026-12-02 lack them)
        scored = scored.sort_values("started", kind="stable")
    fig = agg_figure(11, 4.2)
    left, right = fig.subplots(1, 2)
    trials = np.arange(1, len(scored) + 1)
    rfid = scored["best_rfid"].to_numpy()
    left.scatter(trials, rfid, s=18, color="tab:gray", label="trial's best RFID")
    left.step(
        trials, np.minimum.accumulate(rfid) if len(rfid) else rfid, where="post", color="tab:blue", label="best so far"
    )
    left.set(xlabel="trial", ylabel="RFID (lower is better)", title="Search progress")
    left.legend()
    latency = scored["latency_ms"].to_numpy()
    colors = {"completed": "tab:green", "stopped": "tab:orange", "failed": "tab:red"}
    for status, group in scored.groupby("status"):
        right.scatter(group["latency_ms"], group["best_rfid"], s=22, color=colors.get(status, "k"), label=status)
    if len(scored):
        front = pareto_front(latency, rfid)
        right.plot(latency[front], rfid[front], color="tab:blue", lw=1, label="Pareto front")
    right.set(xlabel="denoiser latency (ms, batch 1)", ylabel="RFID", title="RFID against latency")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def agg_figure(width: float, height: float) -> Figure:
    """A figure on matplotlib's Agg canvas (object API): files and bytes only, no display, no global
    backend switch. Every figure of a search and its report starts here."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def image_grid_figure(images: torch.Tensor, title: str, width: float = 6, height: float = 6.3) -> Figure:
    """Images in [-1, 1], shape (N, C, H, W), as one square-ish grid with a title."""
    grid = make_grid((images.float().clamp(-1, 1) + 1) / 2, nrow=int(np.ceil(np.sqrt(len(images)))), padding=1)
    fig = agg_figure(width, height)
    ax = fig.subplots()
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9 if width >= 5 else 8)
    fig.tight_layout()
    return fig


def save_image_grid(images: torch.Tensor, path: Path, title: str = "") -> Path:
    """Saves images in [-1, 1], shape (N, C, H, W), as one grid PNG."""
    image_grid_figure(images, title).savefig(path, dpi=110)
    return path
