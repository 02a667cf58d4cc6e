"""Each searcher's own overhead per suggest() against the number of records in its memory.

``gpt4``: the LLM call is replaced by an instant, valid reply, so what is timed is the searcher's
work: building the prompt from memory, parsing, validating and de-duplicating the proposals, and
the memory bookkeeping. ``proposals_per_call=1`` makes every suggest() build a prompt (the worst
case); the prompt size is reported too.

``graph``: the real GraphDiffusionSearcher, past its warm-up, with a model trained on the memory.
Every 4th finished trial makes the next suggest() re-train the model (``retrain_every``), so the
suggest() percentiles include re-trainings; their time is reported on its own, and so is the first
training (``train_steps``), against memory size.

Both: saving and loading the memory file (for ``graph`` it holds the model weights too).

    python -m benchmarks.searcher_overhead [--searchers gpt4 graph] [--sizes 10 1000 10000]
        [--calls 200] [--output FILE.json]
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
from ray_diffnas import GPT4Searcher, GraphDiffusionSearcher, SearchMemory, UNetSpace
from ray_diffnas.searchers.base import MemorySearcher
from ray_diffnas.searchers.llm.prompt import build_messages


class InstantLLM(GPT4Searcher):
    """GPT4Searcher whose LLM answers at once with fresh architectures (no network)."""

    def _chat(self, messages, count):
        self.prompt_chars.append(sum(len(m["content"]) for m in messages))
        archs = [self.space.sample(self._reply_rng).to_dict() for _ in range(count)]
        return json.dumps({"reasoning": "benchmark", "proposals": archs}), (0, 0)


def filled_memory(space: UNetSpace, size: int, rng: np.random.Generator, proposer: str) -> SearchMemory:
    memory = SearchMemory("rfid", "min")
    seen: set[str] = set()
    while len(memory) < size:
        arch = space.sample(rng)
        if arch.key() in seen:
            continue
        seen.add(arch.key())
        trial = f"past-{len(memory)}"
        memory.propose(trial, {"arch": arch.to_dict()}, arch.key(), proposer)
        iterations = int(rng.integers(1, 5))
        for it in range(1, iterations + 1):
            memory.report(
                trial,
                {
                    "rfid": float(30 / it + rng.random()),
                    "training_iteration": it,
                    "latency_ms": float(rng.uniform(2, 20)),
                    "params_m": float(rng.uniform(0.1, 5)),
                },
            )
        status = "failed" if rng.random() < 0.05 else ("completed" if iterations == 4 else "stopped")
        memory.complete(trial, None, status=status, error="TrainingDivergedError: nan" if status == "failed" else None)
    return memory


def make_searcher(name: str, space: UNetSpace, size: int) -> MemorySearcher:
    """A searcher of kind ``name`` whose memory holds ``size`` finished trials."""
    rng = np.random.default_rng(size)
    if name == "gpt4":
        searcher = InstantLLM(space=space, metric="rfid", mode="min", api_key="unused", proposals_per_call=1)
        searcher.prompt_chars, searcher._reply_rng = [], np.random.default_rng(1)
        searcher.memory = filled_memory(space, size, rng, "llm")
        return searcher
    searcher = GraphDiffusionSearcher(space=space, metric="rfid", mode="min", seed=0)
    searcher.memory = filled_memory(space, size, rng, "graph")
    searcher._proposed = searcher.warmup  # as if restored mid-search: past the random warm-up
    return searcher


def time_suggestions(searcher: MemorySearcher, calls: int) -> list[float]:
    """Seconds of each suggest(); every suggested trial finishes before the next one."""
    times = []
    for i in range(calls):
        start = time.perf_counter()
        searcher.suggest(f"bench-{i}")
        times.append(time.perf_counter() - start)
        searcher.on_trial_complete(
            f"bench-{i}", {"rfid": 10.0 + i % 7, "training_iteration": 4, "latency_ms": 5.0, "params_m": 1.0}
        )
    return times


def time_save_load(searcher: MemorySearcher) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "memory.parquet"
        start = time.perf_counter()
        searcher.save(str(path))
        save_s = time.perf_counter() - start
        start = time.perf_counter()
        type(searcher)().restore(str(path))
        load_s = time.perf_counter() - start
        return {"save_ms": 1000 * save_s, "load_ms": 1000 * load_s, "file_kb": path.stat().st_size / 1024}


def measure(name: str, size: int, calls: int, space: UNetSpace) -> dict:
    searcher = make_searcher(name, space, size)
    if name == "graph":  # the first training, on its own (it happens in the first suggest())
        start = time.perf_counter()
        searcher._train(searcher._finished())
        first_training_s = time.perf_counter() - start
        searcher.stats.update(trainings=0, train_seconds=0.0)
    ms = sorted(1000 * t for t in time_suggestions(searcher, calls))
    row = {
        "searcher": name,
        "records": size,
        "suggest_p50_ms": statistics.median(ms),
        "suggest_p99_ms": ms[int(0.99 * (len(ms) - 1))],
        "suggest_max_ms": ms[-1],
        **time_save_load(searcher),
    }
    if name == "gpt4":
        prompt = build_messages(space, searcher.objective, searcher.memory, 4, "benchmark", [])
        row.update(
            prompt_chars=sum(len(m["content"]) for m in prompt), prompt_chars_max_seen=max(searcher.prompt_chars)
        )
    else:
        stats = searcher.stats
        row.update(
            first_training_s=first_training_s,
            retrainings=stats["trainings"],
            retrain_mean_s=stats["train_seconds"] / max(stats["trainings"], 1),
            sample_s_per_valid=stats["sample_seconds"] / max(stats["valid"], 1),
            valid_rate=stats["valid"] / max(stats["sampled"], 1),
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--searchers", nargs="+", default=["gpt4", "graph"], choices=("gpt4", "graph"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--output", default="benchmarks/results/searcher_overhead.json")
    args = parser.parse_args()
    space = UNetSpace(image_size=32, base_channels=(16, 32, 48, 64, 96, 128))
    rows = [measure(name, size, args.calls, space) for name in args.searchers for size in args.sizes]
    ms = lambda v: "-" if v is None else f"{v:.2f}"
    count = lambda v: "-" if v is None else str(v)
    rows = [{"prompt_chars": None, "first_training_s": None, "retrain_mean_s": None, **row} for row in rows]
    report(
        rows,
        [
            ("searcher", "searcher", str),
            ("records", "records", count),
            ("suggest_p50_ms", "p50 ms", ms),
            ("suggest_p99_ms", "p99 ms", ms),
            ("prompt_chars", "prompt chars", count),
            ("first_training_s", "1st training s", ms),
            ("retrain_mean_s", "re-train s", ms),
            ("save_ms", "save ms", ms),
            ("load_ms", "load ms", ms),
            ("file_kb", "file KiB", ms),
        ],
        args.output,
    )


if __name__ == "__main__":
    main()
