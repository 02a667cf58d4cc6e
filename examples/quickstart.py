"""Quickstart: a UNet architecture search for a diffusion model on MNIST, with Ray Tune.

Random search over UNetSpace, ASHA early stopping, RFID as the objective. About ten minutes
on a 2-core CPU; pass --smoke for a one-minute run on 8x8 digits.
"""

from __future__ import annotations

import sys

from ray import tune
from ray.tune.schedulers import ASHAScheduler

from ray_diffnas import UNetSpace, train_diffusion

smoke = "--smoke" in sys.argv
space = UNetSpace(image_size=8 if smoke else 16)
tuner = tune.Tuner(
    train_diffusion,
    param_space=space.param_space(
        dataset="digits" if smoke else "mnist",
        max_iterations=2 if smoke else 4,
        steps_per_iteration=20 if smoke else 100,
    ),
    tune_config=tune.TuneConfig(metric="rfid", mode="min", num_samples=2 if smoke else 8,
                                scheduler=ASHAScheduler(max_t=2 if smoke else 4, grace_period=1)),
)
best = tuner.fit().get_best_result()
print(f"best RFID {best.metrics['rfid']:.2f} ({best.metrics['rfid_features']})")
print(f"architecture {best.metrics['arch_key']}: {best.config['arch']}")
