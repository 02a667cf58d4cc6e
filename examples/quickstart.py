"""Quickstart: search UNet architectures for a diffusion model on MNIST with Ray Tune.

Random search over UNetSpace, ASHA early stopping, RFID as the objective: about ten minutes on a
2-core CPU. ``python examples/quickstart.py --smoke`` runs a one-minute version on 8x8 digits.
"""

from __future__ import annotations

import sys

from ray import tune
from ray.tune.schedulers import ASHAScheduler

from ray_diffnas import UNetSpace, train_diffusion

smoke = "--smoke" in sys.argv
dataset, image_size, num_samples, iterations, steps = ("digits", 8, 2, 2, 20) if smoke else ("mnist", 16, 8, 8, 100)

space = UNetSpace(image_size=image_size, max_gflops=0.15)  # as `ray-diffnas search` by default
tuner = tune.Tuner(
    train_diffusion,
    param_space=space.param_space(dataset=dataset, max_iterations=iterations, steps_per_iteration=steps),
    tune_config=tune.TuneConfig(
        metric="rfid",
        mode="min",
        num_samples=num_samples,
        scheduler=ASHAScheduler(max_t=iterations, grace_period=1, reduction_factor=2),
    ),
)
best = tuner.fit().get_best_result()
print(f"best RFID {best.metrics['rfid']:.2f} ({best.metrics['rfid_features']})")
print(f"architecture {best.metrics['arch_key']}: {best.config['arch']}")
