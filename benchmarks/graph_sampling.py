"""Sampling speed and validity of the graph diffusion model on both spaces (DiNAS reports < 0.2 s
per architecture; our target is <= 0.02 s per valid, unique architecture on a 2-core CPU).

    python -m benchmarks.graph_sampling [--table ../shared/data/nb201_cifar10_valid.csv] [--last-step stochastic]

For each space the model is trained the way GraphDiffusionSearcher trains it: 512 unlabelled
random graphs of the space plus 100 labelled ones (quality = top 10 % of a score), 300 + 22 x 50
steps (the model at the end of a 100-trial search; ``--retrains`` changes it). The NB201 score is the table's accuracy when ``--table`` is given, else the number of
convolutions; the UNet score is the total channel width (a stand-in: any label works for timing).
Then it samples batches guided toward the good class and counts valid, unique architectures.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import numpy as np
import torch

from benchmarks.report import report
from ray_diffnas.searchers.graph.diffusion import GraphDiffusion, GraphDiffusionConfig
from ray_diffnas.spaces.nb201 import NB201Space
from ray_diffnas.spaces.unet_space import UNetSpace


def nb201_score(table: str | None) -> Callable[[Any], float]:
    if table is None:
        return lambda arch: float(sum("conv" in op for op in arch.ops))
    import pandas as pd

    accuracy = pd.read_csv(table).set_index("arch")["cifar10_valid_acc"].to_dict()
    return lambda arch: float(accuracy[arch.key()])


def trained_model(
    space: Any, score: Callable[[Any], float], retrains: int, config: GraphDiffusionConfig, seed: int = 0
) -> GraphDiffusion:
    rng = np.random.default_rng(seed)
    labelled = [space.sample(rng) for _ in range(100)]
    scores = np.array([score(a) for a in labelled])
    good = scores >= np.quantile(scores, 0.9)
    prior = [space.encode(space.sample(rng)) for _ in range(512)]
    graphs = [space.encode(a) for a in labelled] + prior
    labels = torch.tensor([[int(g)] for g in good] + [[2]] * len(prior))
    weights = torch.cat([torch.full((100,), 1 / 100), torch.full((512,), 1 / 512)])
    model = GraphDiffusion(len(space.node_classes), len(space.edge_classes), space.max_nodes, [2], config, seed=seed)
    model.fit(graphs, labels, 300, weights)
    for _ in range(retrains):  # the searcher's re-trainings
        model.fit(graphs, labels, 50, weights)
    return model


def measure(name: str, space: Any, model: GraphDiffusion, batch: int, rounds: int, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    model.sample(8, {0: 1})  # warm-up
    valid = unique = total = 0
    seconds = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        graphs = model.sample(batch, {0: 1}, {0: 1.0})
        seconds += time.perf_counter() - start
        archs = [a for a in (space.decode(g) for g in graphs) if a is not None]
        valid += len(archs)
        unique += len({a.key() for a in archs})  # unique within a batch
        total += batch
    return {
        "space": name,
        "threads": threads,
        "batch": batch,
        "samples": total,
        "valid_rate": valid / total,
        "unique_valid": unique,
        "seconds": seconds,
        "seconds_per_sample": seconds / total,
        "seconds_per_valid_unique": seconds / max(unique, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", default=None, help="NB201 table (arch, cifar10_valid_acc) for real labels")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument(
        "--retrains",
        type=int,
        default=22,
        help="50-step re-trainings after the first 300 steps (22: the model at the end of a "
        "100-trial search with the default retrain_every=4 and warmup=10)",
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--last-step",
        choices=("greedy", "stochastic"),
        default="greedy",
        help="greedy: the model's default (each class's mode at the last step); stochastic: a "
        "draw there too, as GraphDiffusionSearcher samples",
    )
    parser.add_argument("--output", default="benchmarks/results/graph_sampling.json")
    args = parser.parse_args()
    spaces = [
        ("nb201", NB201Space(), nb201_score(args.table)),
        ("unet16", UNetSpace(image_size=16), lambda a: float(sum(a.channels()) * sum(a.num_res_blocks))),
        (
            "unet32",
            UNetSpace(image_size=32, num_res_blocks=(1, 2, 3)),
            lambda a: float(sum(a.channels()) * sum(a.num_res_blocks)),
        ),
    ]
    rows = []
    for name, space, score in spaces:
        torch.set_num_threads(1)
        start = time.perf_counter()
        model = trained_model(
            space, score, args.retrains, GraphDiffusionConfig(greedy_last_step=args.last_step == "greedy")
        )
        train_seconds = time.perf_counter() - start
        for threads in (1, 2):
            rows.append(
                {**measure(name, space, model, args.batch, args.rounds, threads), "train_seconds": train_seconds}
            )
    report(
        rows,
        [
            ("space", "space", str),
            ("threads", "threads", str),
            ("batch", "batch", str),
            ("valid_rate", "valid", lambda v: f"{v:.1%}"),
            ("unique_valid", "unique valid", str),
            ("seconds_per_sample", "s/sample", lambda v: f"{v:.4f}"),
            ("seconds_per_valid_unique", "s/valid unique", lambda v: f"{v:.4f}"),
            ("train_seconds", "train s", lambda v: f"{v:.1f}"),
        ],
        args.output,
    )


if __name__ == "__main__":
    main()
