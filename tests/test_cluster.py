"""A search on a real multi-node Ray cluster (head + two workers on this machine, shared storage):
trials spread over the nodes, and a worker node killed mid-trial costs nothing but time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # whole searches, Ray clusters or killed drivers: minutes

DRIVER = Path(__file__).with_name("cluster_driver.py")


def test_search_spreads_over_nodes_and_survives_a_killed_node(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, str(DRIVER), str(tmp_path / "storage"), str(report_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(report_path.read_text())

    assert report["trials"] == 4 and report["errors"] == 0, report
    assert len(report["nodes"]) >= 2  # trials ran on at least two nodes
    killed = report["killed"]
    assert killed is not None
    trial = report["per_trial"][killed["trial_id"]]
    assert trial["error"] is None and trial["last_node"] != killed["node_id"]  # finished elsewhere
    assert trial["steps"][-1] == 60 and sorted(set(trial["steps"])) == [20, 40, 60]  # resumed from its checkpoint
