"""RFID fidelity and cost: does a trial's rapid FID rank architectures as a full FID does?

Trains architectures of the ``ray-diffnas search`` default space as a default trial does, for
``--max-iterations`` (4) x 100 steps (mnist at 16 px, batch 32, seed 0, one CPU thread as Ray gives a
1-CPU trial; a default trial that ASHA lets finish trains 8 x 100), then scores each by

* RFID as a trial reports it: ``rfid_samples`` = 500 images from ``EVAL_SEED`` noise, 10 DDIM steps;
* a full FID: ``--full-samples`` (5000) images with ``--full-steps`` (50) DDIM steps, the same
  feature extractor and reference statistics (``RFID(data, "auto")``).

It reports Spearman's rho between the two, the rho of RFID at other sample counts (the curve a
user chooses a count from) and what each evaluation costs. RFID at ``n`` samples is read from
one 10-step draw of ``max(--counts)`` images: its first ``n`` images are what a trial with
``rfid_samples=n`` generates (the sampler draws noise 250 images at a time from one generator),
and its other disjoint chunks of ``n`` are independent re-draws, which measure RFID's noise.

Architectures: ``--candidates`` draws ``UNetSpace(16).sample(default_rng(seed))``, seeds 0, 1, ...;
duplicates and those above ``--max-gflops`` (a compute cap, not a quality filter) are dropped, and
``--archs`` are taken evenly spaced in GFLOPs order. Trained states and per-model results are cached
in ``--work-dir``: a re-run resumes where the last one stopped.

    python -m benchmarks.rfid_fidelity [--archs 12] [--full-samples 5000] [--full-steps 50]
        [--counts 100 250 500 1000 2000] [--max-gflops 0.03] [--workers 2] [--work-dir runs/rfid_fidelity]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from benchmarks.report import report
from ray_diffnas.app.options import SearchOptions
from ray_diffnas.data.datasets import ImageDataset, load_dataset
from ray_diffnas.diffusion.trainer import DiffusionTrainer
from ray_diffnas.metrics.rfid import RFID, to_uint8
from ray_diffnas.model.cost import count_flops, count_params, measure_cost
from ray_diffnas.model.unet import UNet
from ray_diffnas.spaces.unet_arch import UNetArch
from ray_diffnas.spaces.unet_space import UNetSpace
from ray_diffnas.trainable.settings import TrainingSettings
from ray_diffnas.trainable.trial import EVAL_SEED

STATE_FILE = "trainer.pt"
RESULT_FILE = "result.json"
_WORKER: dict[str, Any] = {}  # each process's data set and RFID, built once


def default_settings(max_iterations: int) -> TrainingSettings:
    """The settings of a default ``ray-diffnas search`` trial that ends after ``max_iterations``."""
    options = dataclasses.replace(SearchOptions(), max_iterations=max_iterations)
    return TrainingSettings.from_config(
        {"dataset": options.dataset, "image_size": options.image_size, **options.training_settings()}
    )


def pick_archs(space: UNetSpace, count: int, candidates: int, max_gflops: float) -> list[tuple[float, UNetArch]]:
    """``count`` (GFLOPs, architecture) evenly spaced in GFLOPs among the affordable seeded samples."""
    found: dict[str, tuple[float, UNetArch]] = {}
    for seed in range(candidates):
        arch = space.sample(np.random.default_rng(seed))
        gflops = count_flops(UNet(arch, space.image_size, 1), space.image_size, 1) / 1e9
        if arch.key() not in found and gflops <= max_gflops:
            found[arch.key()] = (gflops, arch)
    ranked = sorted(found.values(), key=lambda item: item[0])
    if len(ranked) < count:
        raise SystemExit(
            f"only {len(ranked)} distinct architectures of {candidates} candidates have <= {max_gflops} "
            f"GFLOPs; raise --candidates or --max-gflops, or lower --archs."
        )
    return [ranked[int(i)] for i in np.linspace(0, len(ranked) - 1, count).round()]


def _init_worker(threads: int, settings: TrainingSettings) -> None:
    torch.set_num_threads(threads)
    data = load_dataset(settings.dataset, settings.data_root, settings.image_size)
    _WORKER.update(data=data, rfid=RFID(data, settings.rfid_features), settings=settings)


def _log(key: str, message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {key}: {message}", flush=True)


def train(
    arch: UNetArch, data: ImageDataset, settings: TrainingSettings, folder: Path
) -> tuple[DiffusionTrainer, dict]:
    """The trial's training loop (its evaluations left out: they use their own noise generator
    and the EMA in eval mode, so they change nothing of training); loads the saved state instead
    when there is one."""
    trainer = DiffusionTrainer(arch, data, settings)
    # The trial measures cost first; its latency probe draws from torch's global RNG, which dropout uses.
    cost = measure_cost(trainer.model, data.image_size, data.channels)
    path = folder / STATE_FILE
    info = {"params_m": count_params(trainer.model) / 1e6, "gflops": cost.gflops}
    if path.is_file():
        trainer.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return trainer, info  # its training time and loss are in the cached result
    start = time.perf_counter()
    losses = [trainer.train_steps(settings.steps_per_iteration) for _ in range(settings.max_iterations)]
    info.update(train_s=time.perf_counter() - start, final_loss=losses[-1])
    torch.save(trainer.state_dict(), path)
    return trainer, info


def timed_fid(trainer: DiffusionTrainer, rfid: RFID, count: int, steps: int) -> tuple[float, float, torch.Tensor]:
    """(FID, wall seconds of sampling plus scoring, the uint8 images) of ``count`` images at ``steps``."""
    start = time.perf_counter()
    images = to_uint8(trainer.sample(count, steps, seed=EVAL_SEED))
    score = rfid(images)
    return score, time.perf_counter() - start, images


def chunk_fids(rfid: RFID, images: torch.Tensor, counts: list[int]) -> dict[str, list[float]]:
    """FID of each disjoint chunk of ``n`` images, for each ``n``; the first chunk is the trial's.
    The features are extracted once for all chunks."""
    feats = rfid.extractor(images)
    return {str(n): [rfid.of_features(feats[i : i + n]) for i in range(0, len(feats) - n + 1, n)] for n in counts}


def evaluate(job: dict[str, Any]) -> dict[str, Any]:
    """Trains (or loads) one architecture and runs every evaluation not cached yet."""
    settings, data, rfid = _WORKER["settings"], _WORKER["data"], _WORKER["rfid"]
    arch = UNetArch.from_dict(job["arch"], data.image_size)
    folder = Path(job["work_dir"]) / arch.key()
    folder.mkdir(parents=True, exist_ok=True)
    path, spec = folder / RESULT_FILE, {k: v for k, v in job.items() if k != "work_dir"}
    row = json.loads(path.read_text()) if path.is_file() else {}
    if row.get("job") != spec:  # cached with other settings: evaluate afresh (the trained state stays valid)
        row = {"job": spec, "train_s": row.get("train_s"), "final_loss": row.get("final_loss")}
    if "full_fid" in row:
        return row
    _log(arch.key(), "loading" if (folder / STATE_FILE).is_file() else "training")
    trainer, info = train(arch, data, settings, folder)
    row.update(key=arch.key(), **info)
    path.write_text(json.dumps(row, indent=1))
    steps, full_n, full_steps = settings.sampler_steps, job["full_samples"], job["full_steps"]
    if "rfid" not in row:
        _log(arch.key(), f"RFID ({settings.rfid_samples} x {steps} steps)")
        row["rfid"], row["rfid_s"], _ = timed_fid(trainer, rfid, settings.rfid_samples, steps)
        images = to_uint8(trainer.sample(max(job["counts"]), steps, seed=EVAL_SEED))
        row["rfid_chunks"] = chunk_fids(rfid, images, job["counts"])
        torch.save(images, folder / f"samples_{len(images)}x{steps}.pt")
        path.write_text(json.dumps(row, indent=1))
    _log(arch.key(), f"RFID {row['rfid']:.3f}; full FID ({full_n} x {full_steps} steps)")
    row["full_fid"], row["full_s"], images = timed_fid(trainer, rfid, full_n, full_steps)
    # Chunks of the full draw: the same counts at the full step count, to tell steps from samples apart.
    row["full_steps_chunks"] = chunk_fids(rfid, images, [n for n in job["counts"] if n < full_n])
    torch.save(images, folder / f"samples_{full_n}x{full_steps}.pt")
    path.write_text(json.dumps(row, indent=1))
    _log(arch.key(), f"full FID {row['full_fid']:.3f} in {row['full_s']:.0f} s")
    return row


def run_all(jobs: list[dict[str, Any]], workers: int, threads: int, settings: TrainingSettings) -> list[dict[str, Any]]:
    if workers == 1:
        _init_worker(threads, settings)
        return [evaluate(job) for job in jobs]
    # spawn: a fresh interpreter per worker, no forked torch thread pools.
    with ProcessPoolExecutor(
        workers, get_context("spawn"), initializer=_init_worker, initargs=(threads, settings)
    ) as pool:
        return list(pool.map(evaluate, jobs))


def rho(x: list[float], y: list[float]) -> float:
    return float(spearmanr(x, y).statistic)


def bootstrap_rho(x: list[float], y: list[float], draws: int = 2000, seed: int = 0) -> list[float]:
    """95 % interval of rho over architectures resampled with replacement."""
    rng, x, y = np.random.default_rng(seed), np.asarray(x), np.asarray(y)
    picks = (rng.integers(len(x), size=len(x)) for _ in range(draws))
    values = [rho(x[p], y[p]) for p in picks if len(set(p)) > 2]
    return [float(v) for v in np.nanpercentile(values, [2.5, 97.5])]


def curve(rows: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    """rho against the full FID for each sample count: of the trial's chunk and over all chunks."""
    full = [r["full_fid"] for r in rows]
    out = []
    for n in rows[0][field]:
        chunks = np.array([r[field][n] for r in rows])  # (models, chunks)
        per_chunk = [rho(list(chunks[:, c]), full) for c in range(chunks.shape[1])]
        out.append(
            {
                "samples": int(n),
                "rho": per_chunk[0],
                "rho_chunks_mean": float(np.mean(per_chunk)),
                "rho_chunks_min": float(np.min(per_chunk)),
                "rho_chunks_max": float(np.max(per_chunk)),
                "chunks": len(per_chunk),
                **_noise(chunks),
            }
        )
    return out


def _noise(chunks: np.ndarray) -> dict[str, float | None]:
    """Draw-to-draw SD of each model's FID (median over models): raw, and relative to the draw's
    mean over models. Every model gets the same noise (``EVAL_SEED``), so much of a draw's error
    is shared and cancels in a ranking; the relative SD is the part that can reorder models."""
    if chunks.shape[1] < 2:
        return {"median_seed_sd": None, "median_relative_sd": None}
    relative = chunks - chunks.mean(axis=0, keepdims=True)
    return {
        "median_seed_sd": float(np.median(chunks.std(axis=1, ddof=1))),
        "median_relative_sd": float(np.median(relative.std(axis=1, ddof=1))),
    }


def summarize(
    rows: list[dict[str, Any]], settings: TrainingSettings, args: argparse.Namespace, wall_s: float
) -> dict[str, Any]:
    rfid, full = [r["rfid"] for r in rows], [r["full_fid"] for r in rows]
    test = spearmanr(rfid, full)
    rfid_s, full_s = float(np.median([r["rfid_s"] for r in rows])), float(np.median([r["full_s"] for r in rows]))
    rfid_evals = settings.rfid_samples * settings.sampler_steps
    full_evals = args.full_samples * args.full_steps
    return {
        "architectures": len(rows),
        "rfid": f"{settings.rfid_samples} samples x {settings.sampler_steps} steps",
        "full_fid": f"{args.full_samples} samples x {args.full_steps} steps",
        "features": _WORKER["rfid"].features,
        "spearman_rho": float(test.statistic),
        "p_value": float(test.pvalue),
        "rho_95ci_bootstrap": bootstrap_rho(rfid, full),
        "target_rho": 0.9,
        "rho_vs_samples_10_steps": curve(rows, "rfid_chunks"),
        "rho_vs_samples_full_steps": curve(rows, "full_steps_chunks"),
        "rfid_s_median": rfid_s,
        "full_s_median": full_s,
        "cost_ratio_measured": rfid_s / full_s,
        "cost_ratio_network_evals": rfid_evals / full_evals,
        "full_fid_sd_across_archs": float(np.std(full, ddof=1)),
        "full_fid_min_gap": float(np.min(np.diff(sorted(full)))),
        # Per-model seconds, unchanged by a resumed run (which skips what is cached; ``wall_s_this_run`` does not).
        "model_seconds": float(sum((r["train_s"] or 0) + r["rfid_s"] + r["full_s"] for r in rows)),
        "threads_per_worker": args.threads,
        "workers": args.workers,
        "wall_s_this_run": wall_s,
        "selection": f"seeds 0..{args.candidates - 1} of UNetSpace({settings.image_size}).sample, distinct, "
        f"<= {args.max_gflops} GFLOPs, {args.archs} evenly spaced in GFLOPs",
    }


def plot(summary: dict[str, Any], rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for field, label in (
        ("rho_vs_samples_10_steps", "10 DDIM steps (RFID)"),
        ("rho_vs_samples_full_steps", f"{summary['full_fid'].split(' x ')[1]} (full)"),
    ):
        points = summary[field]
        n = [p["samples"] for p in points]
        left.plot(n, [p["rho"] for p in points], "o-", label=label)
        left.fill_between(n, [p["rho_chunks_min"] for p in points], [p["rho_chunks_max"] for p in points], alpha=0.2)
    left.axhline(0.9, color="grey", ls="--", lw=1)
    left.set(
        xscale="log",
        xlabel="generated images per evaluation",
        ylabel="Spearman rho vs full FID",
        title="rho (line: EVAL_SEED draw; band: other draws)",
    )
    left.legend()
    right.scatter([r["full_fid"] for r in rows], [r["rfid"] for r in rows])
    right.set(
        xlabel=f"full FID ({summary['full_fid']})",
        ylabel=f"RFID ({summary['rfid']})",
        title=f"rho = {summary['spearman_rho']:.3f}",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=12, help="architectures to train and score")
    parser.add_argument("--candidates", type=int, default=64, help="seeded samples of the space to choose from")
    parser.add_argument("--max-gflops", type=float, default=0.03, help="compute cap on one denoiser forward")
    parser.add_argument("--full-samples", type=int, default=5000)
    parser.add_argument("--full-steps", type=int, default=50)
    parser.add_argument(
        "--counts",
        type=int,
        nargs="+",
        default=[100, 250, 500, 1000, 2000],
        help="RFID sample counts of the curve (10 steps)",
    )
    parser.add_argument("--workers", type=int, default=1, help="architectures evaluated at once (processes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker (a 1-CPU trial has 1)")
    parser.add_argument(
        "--max-iterations",
        type=int,
        default=4,
        help="iterations of 100 steps each model trains: 4 as docs/benchmarks.md records (the "
        "search's default was 4 then; it is 8 now); trained states are cached in --work-dir, "
        "so another count needs another --work-dir",
    )
    parser.add_argument("--work-dir", default="runs/rfid_fidelity")
    parser.add_argument("--output", default="benchmarks/results/rfid_fidelity.json")
    args = parser.parse_args()
    start = time.perf_counter()
    torch.set_num_threads(args.threads)  # more threads than free cores crawl on a shared CPU
    settings = default_settings(args.max_iterations)
    space = UNetSpace(image_size=settings.image_size)
    picked = pick_archs(space, args.archs, args.candidates, args.max_gflops)
    archs = [arch for _, arch in picked]
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    jobs = [
        {
            "arch": a.to_dict(),
            "full_samples": args.full_samples,
            "full_steps": args.full_steps,
            "counts": sorted(set(args.counts) | {settings.rfid_samples}),
            "work_dir": args.work_dir,
        }
        for a in archs
    ]
    # Costliest first, so the last worker to finish does not start the largest model alone.
    order = sorted(range(len(jobs)), key=lambda i: -picked[i][0])
    done = dict(zip(order, run_all([jobs[i] for i in order], args.workers, args.threads, settings)))
    rows = [done[i] for i in range(len(jobs))]
    if not _WORKER:
        _init_worker(args.threads, settings)  # the summary names the features
    summary = summarize(rows, settings, args, time.perf_counter() - start)
    num, sec = (lambda v: f"{v:.3f}"), (lambda v: f"{v:.1f}")
    opt, opt3 = (lambda v: "-" if v is None else f"{v:.1f}"), (lambda v: "-" if v is None else f"{v:.3f}")
    report(
        rows,
        [
            ("key", "architecture", str),
            ("params_m", "params M", num),
            ("gflops", "GFLOPs", num),
            ("rfid", "RFID@500/10", num),
            ("full_fid", "full FID", num),
            ("rfid_s", "RFID s", sec),
            ("full_s", "full s", sec),
            ("train_s", "train s", opt),
        ],
        args.output,
    )
    curve_rows = [{"steps": "10", **p} for p in summary["rho_vs_samples_10_steps"]]
    curve_rows += [{"steps": str(args.full_steps), **p} for p in summary["rho_vs_samples_full_steps"]]
    report(
        curve_rows,
        [
            ("steps", "steps", str),
            ("samples", "samples", str),
            ("rho", "rho", num),
            ("rho_chunks_mean", "rho mean", num),
            ("rho_chunks_min", "min", num),
            ("rho_chunks_max", "max", num),
            ("chunks", "draws", str),
            ("median_seed_sd", "FID sd", opt3),
            ("median_relative_sd", "relative sd", opt3),
        ],
        Path(args.output).with_name(Path(args.output).stem + "_curve.json"),
    )
    # report() wrote the rows alone; the file also keeps the summary beside them.
    Path(args.output).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
    plot(summary, rows, Path(args.output).with_suffix(".png"))
    print(
        f"Spearman rho (RFID {summary['rfid']} vs full FID {summary['full_fid']}): {summary['spearman_rho']:.3f} "
        f"(95 % CI {summary['rho_95ci_bootstrap'][0]:.2f}..{summary['rho_95ci_bootstrap'][1]:.2f}); cost ratio "
        f"{summary['cost_ratio_measured']:.4f} measured, {summary['cost_ratio_network_evals']:.4f} in network "
        f"evaluations; {summary['model_seconds']:.0f} model-seconds, {summary['wall_s_this_run']:.0f} s wall."
    )


if __name__ == "__main__":
    main()
