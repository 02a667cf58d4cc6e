"""GPT4Searcher's own overhead per suggest() (LLM time excluded) and its prompt size, against memory size.

The LLM call is replaced by an instant, valid reply, so what is timed is the searcher's work:
building the prompt from memory, parsing, validating and de-duplicating the proposals, and the
memory bookkeeping. ``proposals_per_call=1`` makes every suggest() build a prompt (the worst case).
Also times saving and loading the memory file.

    python -m benchmarks.searcher_overhead [--sizes 10 1000 10000] [--calls 200] [--output FILE.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import report
from ray_diffnas import GPT4Searcher, SearchMemory, UNetSpace
from ray_diffnas.prompt import build_messages


class InstantLLM(GPT4Searcher):
    """GPT4Searcher whose LLM answers at once with fresh architectures (no network)."""

    def _chat(self, messages, count):
        self.prompt_chars.append(sum(len(m["content"]) for m in messages))
        archs = [self.space.sample(self._reply_rng).to_dict() for _ in range(count)]
        return json.dumps({"reasoning": "benchmark", "proposals": archs}), (0, 0)


def filled_memory(space: UNetSpace, size: int, rng: np.random.Generator) -> SearchMemory:
    memory = SearchMemory("rfid", "min")
    seen: set[str] = set()
    while len(memory) < size:
        arch = space.sample(rng)
        if arch.key() in seen:
            continue
        seen.add(arch.key())
        trial = f"past-{len(memory)}"
        memory.propose(trial, {"arch": arch.to_dict()}, arch.key(), "llm")
        iterations = int(rng.integers(1, 5))
        for it in range(1, iterations + 1):
            memory.report(trial, {"rfid": float(30 / it + rng.random()), "training_iteration": it,
                                  "latency_ms": float(rng.uniform(2, 20)), "params_m": float(rng.uniform(0.1, 5))})
        status = "failed" if rng.random() < 0.05 else ("completed" if iterations == 4 else "stopped")
        memory.complete(trial, None, status=status, error="TrainingDivergedError: nan" if status == "failed" else None)
    return memory


def measure(size: int, calls: int, space: UNetSpace) -> dict:
    rng = np.random.default_rng(size)
    searcher = InstantLLM(space=space, metric="rfid", mode="min", api_key="unused", proposals_per_call=1)
    searcher.prompt_chars, searcher._reply_rng = [], np.random.default_rng(1)
    searcher.memory = filled_memory(space, size, rng)
    times = []
    for i in range(calls):
        start = time.perf_counter()
        searcher.suggest(f"bench-{i}")
        times.append(time.perf_counter() - start)
        searcher.on_trial_complete(f"bench-{i}", {"rfid": 10.0, "training_iteration": 4})
    prompt = build_messages(space, searcher.memory, 4, "benchmark", [])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "memory.parquet"
        start = time.perf_counter()
        searcher.save(str(path))
        save_s = time.perf_counter() - start
        start = time.perf_counter()
        GPT4Searcher().restore(str(path))
        load_s = time.perf_counter() - start
        file_kb = path.stat().st_size / 1024
    ms = sorted(1000 * t for t in times)
    return {
        "records": size, "suggest_p50_ms": statistics.median(ms), "suggest_p99_ms": ms[int(0.99 * (len(ms) - 1))],
        "prompt_chars": sum(len(m["content"]) for m in prompt), "prompt_chars_max_seen": max(searcher.prompt_chars),
        "save_ms": 1000 * save_s, "load_ms": 1000 * load_s, "file_kb": file_kb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--output", default="benchmarks/results/searcher_overhead.json")
    args = parser.parse_args()
    space = UNetSpace(image_size=32, base_channels=(16, 32, 48, 64, 96, 128))
    rows = [measure(size, args.calls, space) for size in args.sizes]
    ms, count = (lambda v: f"{v:.2f}"), str
    report(rows, [("records", "records", count), ("suggest_p50_ms", "p50 ms", ms), ("suggest_p99_ms", "p99 ms", ms),
                  ("prompt_chars", "prompt chars", count), ("save_ms", "save ms", ms), ("load_ms", "load ms", ms),
                  ("file_kb", "file KiB", ms)], args.output)


if __name__ == "__main__":
    main()
