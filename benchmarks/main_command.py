"""The README's main command as a new user meets it: ``pip install -e . && ray-diffnas search``, timed.

Each run starts from nothing a user would not have: a fresh copy of one commit (``git archive``, so
edits to the working tree during a run change nothing), a new virtual environment, an empty RFID
cache (the feature classifier and the reference statistics are built again) and a new output folder.
It times the install and the search apart and reads the search's ``summary.json``. Runs are cached
one file each under ``--work-dir``: rerunning goes on with the runs not yet done.

One run per ``--seeds`` entry: seed 0 runs the command exactly as the README gives it (0 is the default
seed), another seed adds ``--seed S``, so that the best RFIDs are comparable with a many-seed median of
an earlier default (``benchmarks.end_to_end --seeds 0 1 2``).

    python -m benchmarks.main_command [--seeds 0 1 2] [--commit HEAD] [--work-dir runs/main_command]
        [--output benchmarks/results/main_command.json] [-- extra ray-diffnas search flags]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.report import report

REPO = Path(__file__).resolve().parent.parent


def export_commit(commit: str, folder: Path) -> str:
    """A clean copy of ``commit`` in ``folder`` (as a clone would have it); returns the commit's hash."""
    sha = subprocess.run(["git", "rev-parse", commit], cwd=REPO, check=True, capture_output=True, text=True)
    folder.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", sha.stdout.strip()], cwd=REPO, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(folder)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {commit} failed")
    return sha.stdout.strip()


def timed(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    """Runs ``command`` with its output to ``log``; returns its wall seconds."""
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}); see {log}")
    return time.perf_counter() - start


def one_run(seed: int, commit: str, work: Path, extra: list[str]) -> dict[str, Any]:
    """Export, install and search once, from nothing; returns the run's figures."""
    run = work / f"seed{seed}"
    if run.exists():  # an earlier run of this script was stopped part-way: start this one again
        shutil.rmtree(run)
    sha = export_commit(commit, run / "src")
    env = {**os.environ, "RAY_DIFFNAS_CACHE": str(run / "cache")}
    env.pop("VIRTUAL_ENV", None)
    venv = run / "venv"
    install_s = timed(
        ["sh", "-c", f"{sys.executable} -m venv {venv} && {venv}/bin/pip install -q -e ."],
        run / "src",
        env,
        run / "install.log",
    )
    search = ["ray-diffnas", "search", *([] if seed == 0 else ["--seed", str(seed)]), *extra]
    search_s = timed([f"{venv}/bin/{search[0]}", *search[1:]], run / "src", env, run / "console.txt")
    summary = json.loads((run / "src" / "runs" / "search" / "summary.json").read_text())
    console_lines = len((run / "console.txt").read_text().splitlines())
    shutil.rmtree(venv)  # ~6 GB each; the logs, console and search folder stay
    return {
        "seed": seed,
        "command": f"pip install -e . && {' '.join(search)}",
        "commit": sha,
        "install_s": install_s,
        "search_s": search_s,
        "total_s": install_s + search_s,
        "best_rfid": summary["best_rfid"],
        "best_arch": summary["best_arch"],
        "trials": summary["trials"],
        "status_counts": summary.get("status_counts"),
        "console_lines": console_lines,
    }


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="one run each")
    parser.add_argument("--commit", default="HEAD", help="the commit to install (default: HEAD)")
    parser.add_argument("--work-dir", default="runs/main_command", help="one folder per run; rerun to go on")
    parser.add_argument("--output", default="benchmarks/results/main_command.json")
    parser.add_argument("extra", nargs="*", help="more `ray-diffnas search` flags, after `--`")
    args = parser.parse_args()
    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        done = work / f"seed{seed}.json"
        if not done.exists():
            print(f"seed {seed}: install and search from nothing ...", flush=True)
            done.write_text(json.dumps(one_run(seed, args.commit, work, args.extra), indent=1))
        rows.append(json.loads(done.read_text()))
    rows.append(
        {
            "seed": "median",
            "install_s": statistics.median(r["install_s"] for r in rows),
            "search_s": statistics.median(r["search_s"] for r in rows),
            "total_s": statistics.median(r["total_s"] for r in rows),
            "best_rfid": statistics.median(r["best_rfid"] for r in rows),
            "best_arch": "",
            "console_lines": statistics.median(r["console_lines"] for r in rows),
        }
    )
    report(
        rows,
        [
            ("seed", "seed", str),
            ("install_s", "install", minutes),
            ("search_s", "search", minutes),
            ("total_s", "total", minutes),
            ("best_rfid", "best RFID", lambda v: f"{v:.3f}"),
            ("console_lines", "console lines", lambda v: f"{v:.0f}"),
            ("best_arch", "best architecture", str),
        ],
        args.output,
    )


if __name__ == "__main__":
    main()
