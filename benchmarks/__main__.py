"""Runs the benchmark scripts one after another, each with its defaults (``python -m benchmarks``).

Each script prints its table and writes its JSON to ``benchmarks/results/``. Pick some with
``--only``; the slow ones train diffusion models and take from minutes to an hour on a 2-core CPU.

    python -m benchmarks [--only throughput convergence ...] [--list]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

# In the order of docs/benchmarks.md, with a rough cost on the project's 2-core CPU.
SCRIPTS = {
    "throughput": "training step images/s, ours vs diffusers.UNet2DModel (minutes)",
    "convergence": "steps of the rapid recipe to reach plain DDPM's RFID, 3 seeds (~15 min)",
    "rfid_fidelity": "Spearman rho of RFID vs full FID on 12 architectures (~1 h)",
    "searcher_overhead": "suggest() latency, re-training and memory save/load of both searchers (~10 min)",
    "end_to_end": "the README main command with ASHA and without (~20 min)",
    "main_command": "pip install -e . && ray-diffnas search from nothing, timed, 3 seeds (~30 min)",
    "gpu_path": "the trainable's GPU path (bf16, channels-last); runs on the CPU where no GPU is (minutes)",
    "graph_sampling": "graph diffusion sampling speed and valid rate, UNet spaces (--table adds NB201; minutes)",
    "llm_faults": "GPT4Searcher under LLM endpoint faults in real Tune runs (minutes)",
    "llm_prompt_cache": "prompt tokens an LLM server with a prefix cache evaluates per call, two layouts (seconds; --time: ~30 min)",
    "kill_anywhere": "SIGKILL ray-diffnas search at random moments, resume, check (>= 30 kills per searcher: ~1 h)",
    "unet_bench": "the digits UNet table, its noise floor, every searcher on it and on NB201 (resumable; many hours)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(SCRIPTS), help="run these scripts only")
    parser.add_argument("--list", action="store_true", help="list the scripts and what each measures")
    args = parser.parse_args()
    if args.list:
        for name, what in SCRIPTS.items():
            print(f"{name:18s} {what}")
        return
    failed = []
    for name in args.only or list(SCRIPTS):
        print(f"\n=== benchmarks.{name}: {SCRIPTS[name]}", flush=True)
        start = time.perf_counter()
        if subprocess.run([sys.executable, "-m", f"benchmarks.{name}"]).returncode != 0:
            failed.append(name)
        print(f"=== benchmarks.{name}: {time.perf_counter() - start:.0f} s", flush=True)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
