"""Runs examples/cluster_job.py's search on a real three-node Ray cluster and kills a worker node.

Used by test_cluster.py in a subprocess of its own (a cluster needs a fresh Ray driver):
``python cluster_driver.py STORAGE_PATH REPORT.json``. The head node has no CPUs, so every
trial runs on one of the two worker nodes. When the first trial reports its first iteration,
that trial's node is killed (its raylet and workers, SIGKILL) and a replacement node joins, as
an autoscaler would add one; the trial must restart elsewhere from its checkpoint.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ray
from ray import tune
from ray.cluster_utils import Cluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from cluster_job import build_tuner, summarize  # noqa: E402


class KillNodeMidTrial(tune.Callback):
    def __init__(self, cluster: Cluster, workers: list) -> None:
        self.cluster, self.workers = cluster, workers
        self.killed: dict | None = None

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks with the experiment; the cluster handle (locks) stays out.
        return {"killed": self.killed, "cluster": None, "workers": []}

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if self.killed is None and result["training_iteration"] == 1:
            node = next(n for n in self.workers if n.node_id == result["node_id"])
            self.killed = {"trial_id": trial.trial_id, "node_id": node.node_id}
            self.cluster.remove_node(node, allow_graceful=False)
            self.workers.append(self.cluster.add_node(num_cpus=1))


def main(storage_path: str, report_path: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    killer = KillNodeMidTrial(cluster, workers)
    grid = build_tuner(storage_path, "graph", num_samples=4, smoke=True, asha=False, callbacks=[killer]).fit()
    trials = {
        r.metrics["trial_id"]: {
            "nodes": sorted(set(r.metrics_dataframe["node_id"].dropna())),
            "last_node": r.metrics.get("node_id"),
            "steps": [int(s) for s in r.metrics_dataframe["step"].dropna()],
            "error": None if r.error is None else str(r.error)[:300],
        }
        for r in grid
        if r.metrics
    }
    report = {**summarize(grid), "killed": killer.killed, "per_trial": trials}
    Path(report_path).write_text(json.dumps(report, indent=1))
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
