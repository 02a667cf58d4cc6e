"""Graph diffusion proposes UNet architectures (DiNAS): GraphDiffusionSearcher in a tune.Tuner, with ASHA,
a latency constraint and a guidance weight per condition. No API key, no GPU, no download.

    python examples/graph_search.py            # 16 trials on MNIST at 16 px (about 20 minutes on 2 cores)
    python examples/graph_search.py --smoke    # a one-minute run on 8x8 digits

The searcher proposes random architectures until ``warmup`` trials are in, then trains a discrete
graph diffusion model on what it has seen and asks it for architectures that are both good
(top RFID class) and fast (``latency_ms`` under the budget). ``guidance`` weighs the two.
"""

from __future__ import annotations

import argparse

from ray import tune
from ray.tune.schedulers import ASHAScheduler

from ray_diffnas import GraphDiffusionSearcher, UNetSpace, train_diffusion

parser = argparse.ArgumentParser()
parser.add_argument("--latency-ms", type=float, default=5.0, help="the latency budget of one forward pass")
parser.add_argument("--smoke", action="store_true")
args = parser.parse_args()

space = UNetSpace(image_size=8 if args.smoke else 16)
param_space = space.param_space(
    dataset="digits" if args.smoke else "mnist",
    max_iterations=2 if args.smoke else 8,
    steps_per_iteration=20 if args.smoke else 100,
    rfid_samples=200 if args.smoke else 500,
)
searcher = GraphDiffusionSearcher(
    constraints={"latency_ms": args.latency_ms},
    guidance={"quality": 1.0, "latency_ms": 1.5},  # latency matters a little more than RFID here
    warmup=2 if args.smoke else 6,
    retrain_every=1 if args.smoke else 2,
    train_steps=60 if args.smoke else 300,
    retrain_steps=20 if args.smoke else 50,
)
tuner = tune.Tuner(
    train_diffusion,
    param_space=param_space,
    tune_config=tune.TuneConfig(
        metric="rfid",
        mode="min",
        search_alg=searcher,
        num_samples=4 if args.smoke else 16,
        scheduler=ASHAScheduler(max_t=param_space["max_iterations"], grace_period=1, reduction_factor=2),
        max_concurrent_trials=2,
    ),
)
results = tuner.fit()

best = results.get_best_result()
print(f"best RFID {best.metrics['rfid']:.2f} at {best.metrics['latency_ms']:.2f} ms: {best.metrics['arch_key']}")
within = [r for r in results if r.metrics and r.metrics.get("latency_ms", float("inf")) <= args.latency_ms]
print(f"{len(within)} of {len(results)} trials within {args.latency_ms} ms")
