"""Rapid convergence: how many steps the trial recipe needs to reach plain DDPM's final RFID.

Plain DDPM training here is what Ho et al. (2020) train: epsilon-prediction with a uniformly
weighted MSE, and an EMA of the weights at a fixed decay from step 0 (no warm-up). Everything else
is shared with the recipe so that only those three choices differ: the network, the cosine noise
schedule, the data order, AdamW with linear warm-up + cosine decay over the same budget, the
evaluation (RFID on 500 samples, 10 DDIM steps, the trials' evaluation noise).

The recipe (``DiffusionTrainer``, what every trial runs) is v-prediction with Min-SNR-5 weighting
and an EMA whose decay warms up as ``min(decay, (1 + k) / (10 + k))``. Both train for the full
budget with an RFID every ``--eval-every`` steps; the figure is the first evaluated step at which
the recipe's RFID is at or below plain DDPM's RFID at the end of its budget.

    python -m benchmarks.convergence [--steps 1200] [--eval-every 100] [--seeds 0 1 2]
        [--dataset mnist] [--image-size 16] [--work-dir runs/convergence]
        [--output benchmarks/results/convergence.json]

Each seed's result is kept in ``--work-dir`` (``seed-N.json``) and reused by later runs with the
same settings, so seeds can run in parallel processes (``--seeds 1``, ``--seeds 2``, ...) and a
final run with all seeds assembles the table.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.report import report
from ray_diffnas.data.datasets import ImageDataset, load_dataset
from ray_diffnas.diffusion.recipe import EMA
from ray_diffnas.diffusion.schedule import T_MIN, add_noise, alpha_sigma
from ray_diffnas.diffusion.trainer import DiffusionTrainer
from ray_diffnas.metrics.rfid import RFID
from ray_diffnas.spaces.unet_arch import UNetArch
from ray_diffnas.trainable.settings import TrainingSettings
from ray_diffnas.trainable.trial import EVAL_SEED

# A mid-sized architecture of the default search space at 16 px.
DEFAULT_ARCH = {
    "base_channels": 16,
    "channel_mult": [1, 2, 2],
    "num_res_blocks": [2, 2, 2],
    "attention_resolutions": [4],
    "num_heads": 4,
    "mid_attention": True,
}
# An epsilon-prediction sampler cannot start at t = 1, where alpha = 0 and x_0 = (x - sigma eps) / alpha
# is undefined; it starts just below (alpha = 0.0016), where x_t is pure noise to within 0.2 %.
EPS_T_START = 0.999


class FixedEMA(EMA):
    """EMA at a fixed decay from the first step (DDPM's; no warm-up)."""

    def decay_at(self, step: int) -> float:
        return self.decay


class PlainDDPMTrainer(DiffusionTrainer):
    """The recipe's trainer with DDPM's loss (epsilon, uniform weights), EMA and epsilon sampler."""

    def __init__(self, arch: UNetArch, data: ImageDataset, settings: TrainingSettings) -> None:
        super().__init__(arch, data, settings, torch.device("cpu"))
        self.ema = FixedEMA(self.model, settings.ema_decay)

    def loss(self, x0: torch.Tensor) -> torch.Tensor:
        t = torch.rand(x0.shape[0], device=x0.device, generator=self.noise_generator).clamp(min=T_MIN)
        noise = torch.randn(x0.shape, device=x0.device, generator=self.noise_generator)
        return (self.model(add_noise(x0, t, noise), t).float() - noise).pow(2).mean()

    def sampler(
        self, model: torch.nn.Module, shape: tuple[int, ...], steps: int, generator: torch.Generator
    ) -> torch.Tensor:
        return eps_ddim_sample(model, shape, steps, generator)


@torch.no_grad()
def eps_ddim_sample(
    model: torch.nn.Module, shape: tuple[int, ...], steps: int, generator: torch.Generator
) -> torch.Tensor:
    """Deterministic DDIM for an epsilon-predicting network (the recipe's sampler, other parametrisation)."""
    x = torch.randn(shape, generator=generator)
    times = torch.linspace(EPS_T_START, 0.0, steps + 1)
    for t_now, t_next in zip(times[:-1], times[1:]):
        alpha, sigma = alpha_sigma(t_now)
        eps = model(x, torch.full((shape[0],), float(t_now))).float()
        x0 = ((x - sigma * eps) / alpha).clamp(-1.0, 1.0)
        eps = (x - alpha * x0) / sigma  # re-derived after clamping, as the recipe's sampler does
        alpha_next, sigma_next = alpha_sigma(t_next)
        x = alpha_next * x0 + sigma_next * eps
    return x.clamp(-1.0, 1.0)


def rfid_curve(trainer: DiffusionTrainer, rfid: RFID, steps: int, eval_every: int) -> list[dict[str, float]]:
    """Trains for ``steps`` and scores the EMA model every ``eval_every`` steps."""
    curve = []
    s = trainer.settings
    while trainer.step < steps:
        trainer.train_steps(eval_every)
        score = rfid(trainer.sample(s.rfid_samples, s.sampler_steps, seed=EVAL_SEED))
        curve.append({"step": trainer.step, "rfid": score})
        print(f"  {type(trainer).__name__} step {trainer.step}: RFID {score:.2f}", flush=True)
    return curve


def steps_to_reach(curve: list[dict[str, float]], target: float) -> int | None:
    """The first evaluated step whose RFID is at or below ``target`` (None if never)."""
    return next((point["step"] for point in curve if point["rfid"] <= target), None)


def run_seed(seed: int, arch: UNetArch, data: ImageDataset, args: argparse.Namespace) -> dict[str, Any]:
    settings = TrainingSettings(
        dataset=args.dataset,
        image_size=args.image_size,
        seed=seed,
        steps_per_iteration=args.eval_every,
        max_iterations=args.steps // args.eval_every,
    )
    rfid = RFID(data, settings.rfid_features)
    start = time.perf_counter()
    plain_trainer = PlainDDPMTrainer(arch, data, settings)
    plain = rfid_curve(plain_trainer, rfid, args.steps, args.eval_every)
    plain_s = time.perf_counter() - start
    # A fixed-decay EMA still remembers the initial weights after a short budget (0.999 ** 1200 = 0.3),
    # so plain DDPM's raw weights are scored too: the fairer bar for the recipe.
    raw = rfid(plain_trainer.sample(settings.rfid_samples, settings.sampler_steps, seed=EVAL_SEED, ema=False))
    print(f"  PlainDDPMTrainer raw weights at step {plain_trainer.step}: RFID {raw:.2f}", flush=True)
    start = time.perf_counter()
    recipe = rfid_curve(DiffusionTrainer(arch, data, settings, torch.device("cpu")), rfid, args.steps, args.eval_every)
    recipe_s = time.perf_counter() - start
    target = plain[-1]["rfid"]
    reached = steps_to_reach(recipe, target)
    return {
        "seed": seed,
        "arch": arch.key(),
        "budget_steps": args.steps,
        "plain_final_rfid": target,
        "plain_best_rfid": min(p["rfid"] for p in plain),
        "plain_raw_final_rfid": raw,
        "recipe_steps_to_plain_raw": steps_to_reach(recipe, raw),
        "recipe_final_rfid": recipe[-1]["rfid"],
        "recipe_steps_to_plain_final": reached,
        "fraction_of_budget": None if reached is None else reached / args.steps,
        "recipe_steps_to_plain_best": steps_to_reach(recipe, min(p["rfid"] for p in plain)),
        "plain_curve": plain,
        "recipe_curve": recipe,
        "plain_s": plain_s,
        "recipe_s": recipe_s,
    }


def cached_seed(seed: int, arch: UNetArch, data: ImageDataset, args: argparse.Namespace) -> dict[str, Any]:
    """``run_seed``'s result, from the work folder when a run with the same settings saved it."""
    settings = {
        "arch": arch.key(),
        "steps": args.steps,
        "eval_every": args.eval_every,
        "dataset": args.dataset,
        "image_size": args.image_size,
    }
    path = Path(args.work_dir) / f"seed-{seed}.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["settings"] == settings:
            return saved["row"]
    row = run_seed(seed, arch, data, args)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"settings": settings, "row": row}, indent=1))
    return row


def summary_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    reached = [r["fraction_of_budget"] for r in rows]
    mean = lambda key: sum(r[key] for r in rows) / len(rows)
    return {
        "seed": "mean",
        "arch": rows[0]["arch"],
        "budget_steps": rows[0]["budget_steps"],
        "plain_final_rfid": mean("plain_final_rfid"),
        "plain_best_rfid": mean("plain_best_rfid"),
        "plain_raw_final_rfid": mean("plain_raw_final_rfid"),
        "recipe_steps_to_plain_raw": _mean_or_none([r["recipe_steps_to_plain_raw"] for r in rows]),
        "recipe_final_rfid": mean("recipe_final_rfid"),
        "recipe_steps_to_plain_final": _mean_or_none([r["recipe_steps_to_plain_final"] for r in rows]),
        "fraction_of_budget": None if None in reached else max(reached),  # the worst seed
        "recipe_steps_to_plain_best": None,
    }


def _mean_or_none(values: list[int | None]) -> float | None:
    return None if None in values else sum(values) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1200, help="plain DDPM's full budget (and the recipe's)")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--arch", default=json.dumps(DEFAULT_ARCH), help="UNetArch fields as JSON")
    parser.add_argument("--work-dir", default="runs/convergence", help="per-seed results, reused by later runs")
    parser.add_argument("--output", default="benchmarks/results/convergence.json")
    args = parser.parse_args()
    if args.steps % args.eval_every:
        parser.error(f"--steps ({args.steps}) must be a multiple of --eval-every ({args.eval_every}).")
    data = load_dataset(args.dataset, image_size=args.image_size)
    arch = UNetArch.from_dict(json.loads(args.arch), data.image_size)
    rows = [cached_seed(seed, arch, data, args) for seed in args.seeds]
    rows.append(summary_row(rows))
    num = lambda v: (
        "-"
        if v is None or (isinstance(v, float) and math.isnan(v))
        else (f"{v:.2f}" if isinstance(v, float) else str(v))
    )
    report(
        rows,
        [
            ("seed", "seed", str),
            ("budget_steps", "budget", str),
            ("plain_final_rfid", "plain DDPM final RFID", num),
            ("plain_best_rfid", "plain best", num),
            ("recipe_final_rfid", "recipe final", num),
            ("recipe_steps_to_plain_final", "recipe steps to plain final", num),
            ("fraction_of_budget", "fraction of budget", num),
            ("recipe_steps_to_plain_best", "recipe steps to plain best", num),
            ("plain_raw_final_rfid", "plain raw weights final", num),
            ("recipe_steps_to_plain_raw", "recipe steps to plain raw", num),
        ],
        args.output,
    )


if __name__ == "__main__":
    main()
