"""An architecture search as a Ray job on a cluster: trials spread over the nodes, survive node loss.

Submit it to a running cluster (see README, "Running on a Ray cluster"):

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python examples/cluster_job.py --storage-path /shared/ray_diffnas --smoke

or run it on any node of the cluster (``RAY_ADDRESS`` or ``--address``), or on a laptop with no
cluster at all (a local Ray starts). ``--storage-path`` must be visible from every node (a shared
folder or a cloud bucket URI): trial checkpoints go there, so a trial whose node dies restarts on
another node from its last checkpoint (``FailureConfig``). Run the same command again with
``--resume`` to finish a search whose driver died.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from ray_diffnas import DiffNASError, GPT4Searcher, GraphDiffusionSearcher, UNetSpace, train_diffusion
from ray_diffnas.app.job_env import check_output_survives_job, leave_job_working_dir

NAME = "cluster_search"


def build_tuner(
    storage_path: str,
    searcher: str = "graph",
    num_samples: int = 8,
    smoke: bool = False,
    max_failures: int = 3,
    asha: bool = True,
    callbacks: Sequence[tune.Callback] = (),
) -> tune.Tuner:
    """The search: UNet trials (pruned by ASHA unless ``asha`` is False), each retried from its
    checkpoint up to ``max_failures`` times."""
    space = UNetSpace(image_size=8 if smoke else 16)
    param_space = space.param_space(
        dataset="digits" if smoke else "mnist",
        max_iterations=3 if smoke else 8,
        steps_per_iteration=20 if smoke else 100,
        rfid_samples=64 if smoke else 500,
        sampler_steps=2 if smoke else 10,
        batch_size=16 if smoke else 32,
    )
    search_alg = (
        GraphDiffusionSearcher(warmup=2, retrain_every=2) if searcher == "graph" else GPT4Searcher(proposals_per_call=2)
    )
    return tune.Tuner(
        train_diffusion,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric="rfid",
            mode="min",
            num_samples=num_samples,
            search_alg=search_alg,
            scheduler=ASHAScheduler(max_t=param_space["max_iterations"], grace_period=1, reduction_factor=2)
            if asha
            else None,
        ),
        run_config=tune.RunConfig(
            name=NAME,
            storage_path=storage_path,
            callbacks=list(callbacks),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        ),
    )


def summarize(grid: tune.ResultGrid) -> dict:
    """Trials, errors, the nodes that ran them and the best trial, as JSON."""
    metrics = [r.metrics or {} for r in grid]
    scored = [m for m in metrics if isinstance(m.get("rfid"), float) and m["rfid"] == m["rfid"]]
    best = min(scored, key=lambda m: m["rfid"], default={})
    return {
        "trials": len(grid),
        "errors": len(grid.errors),
        "nodes": sorted({m.get("node_id") for m in metrics} - {None}),
        "best_rfid": best.get("rfid"),
        "best_arch": best.get("arch_key"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage-path", required=True, help="a folder every node sees, or a bucket URI")
    parser.add_argument("--searcher", choices=("graph", "gpt4"), default="graph")
    parser.add_argument("--num-samples", type=int, default=8)
    parser.add_argument("--address", default=None, help="the cluster (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--resume", action="store_true", help="finish the search saved under --storage-path")
    parser.add_argument("--smoke", action="store_true", help="tiny trials on 8x8 digits (a minute or two)")
    args = parser.parse_args()

    try:  # a relative folder would land in the job's copy of its working dir, which Ray deletes
        if "://" not in args.storage_path:
            check_output_survives_job("--storage-path", args.storage_path)
    except DiffNASError as error:
        parser.error(str(error))
    storage = args.storage_path if "://" in args.storage_path else str(Path(args.storage_path).resolve())
    # Under `ray job submit --working-dir`, Ray may delete the job's copy of the working dir while
    # the driver still runs in it (ray-project/ray#52343); Tune's final listing of the experiment
    # then fails in os.getcwd(). Run from a folder that stays (once the storage path is absolute).
    leave_job_working_dir()
    ray.init(address=args.address)
    print(f"Cluster: {len(ray.nodes())} node(s), {ray.cluster_resources().get('CPU', 0):g} CPUs")
    path = str(Path(storage) / NAME) if "://" not in storage else f"{storage}/{NAME}"
    if args.resume and tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(path, trainable=train_diffusion)
    else:
        tuner = build_tuner(storage, args.searcher, args.num_samples, args.smoke)
    summary = summarize(tuner.fit())
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
