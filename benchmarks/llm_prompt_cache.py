"""How much of each LLM call's prompt a prefix-caching server must evaluate, for two prompt layouts.

A server that keeps the previous prompt's state (llama.cpp, vLLM; OpenAI bills a repeated prefix
at a discount) evaluates only the tokens after the first one that differs from the last prompt.
With the local SmolLM2-135M on two CPU cores, evaluating the prompt is nearly all of a call's time,
so those tokens are what a search with the local model waits for.

The benchmark replays the calls of a ``GPT4Searcher`` run on a table without an LLM: outcomes come
from the table (uniform draws, the same for both layouts), ``--per-call`` proposals per call (the
searcher's default, 4), one trial at a time as in ``bench-table``. For each call it builds the
prompt with this checkout's ``build_messages`` and with the one of ``--before`` (a git revision),
formats it with the model's chat template and counts its tokens, and the tokens after the prefix
it shares with the previous call's prompt. ``--time`` also sends each prompt to the real local
model (``max_tokens=1``, one ``llama_cpp.Llama`` per layout, which reuses the shared prefix as the
server does) and reports the seconds.

    python -m benchmarks.llm_prompt_cache [--table nb201|unet] [--before REV] [--queries 100] [--time]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ray_diffnas.bench.build import curve_column
from ray_diffnas.bench.table import load_table
from ray_diffnas.searchers.llm import prompt as current_prompt
from ray_diffnas.searchers.llm.local_server import find_gguf_model
from ray_diffnas.searchers.memory import SearchMemory
from ray_diffnas.searchers.objective import Objective
from ray_diffnas.spaces.registry import space_from_spec

TABLES = {  # name: (file, --space spelling, objective, mode)
    "nb201": ("../shared/data/nb201_cifar10_valid.csv", "nb201", "cifar10_valid_acc", "max"),
    "unet": ("benchmarks/tables/unet_digits8.parquet", "unet-bench:8", "rfid_final", "min"),
}
PROMPT_FILE = "ray_diffnas/searchers/llm/prompt.py"


def prompt_module_at(revision: str) -> types.ModuleType:
    """``prompt.py`` as it was at ``revision``, loaded beside this checkout's."""
    source = subprocess.run(["git", "show", f"{revision}:{PROMPT_FILE}"], check=True, capture_output=True, text=True)
    module = types.ModuleType(f"prompt_at_{revision}")
    exec(compile(source.stdout, f"{revision}:{PROMPT_FILE}", "exec"), module.__dict__)  # noqa: S102 - our own file
    return module


def chatml(messages: list[dict[str, str]]) -> str:
    """SmolLM2's chat template (ChatML), as the llama.cpp server applies it."""
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


def replay_prompts(table_name: str, queries: int, per_call: int, seed: int, build: Callable) -> list[list[dict]]:
    """The messages of every call of a replayed run (outcomes from the table, uniform draws)."""
    path, space_spec, metric, mode = TABLES[table_name]
    table = load_table(path, space_from_spec(space_spec))
    keys = [key for key, row in table.rows.items() if np.isfinite(row.get(metric, np.nan))]
    rng = np.random.default_rng(seed)
    order = [keys[i] for i in rng.permutation(len(keys))[:queries]]
    memory = SearchMemory(metric, mode)
    objective = Objective(metric, mode)
    calls = []
    for start in range(0, len(order), per_call):
        budget = f"{len(memory.records(['completed']))} trials finished, {queries} in all"
        calls.append(build(table.space, objective, memory, per_call, budget, []))
        for key in order[start : start + per_call]:
            row = table.rows[key]
            trial = f"t{len(memory)}"
            memory.propose(trial, {"arch": key}, key, "llm")
            # a built table's learning curve (rfid@1, rfid@2, ...), else the one value
            curve = [row[c] for i in range(1, 100) if (c := curve_column(i)) in row and np.isfinite(row[c])]
            for iteration, value in enumerate(curve or [row[metric]], start=1):
                memory.report(trial, {metric: value, "training_iteration": iteration})
            memory.complete(trial, {metric: row[metric], "training_iteration": max(len(curve), 1)}, "completed")
    return calls


def evaluated_tokens(prompts: list[list[int]]) -> list[int]:
    """Tokens after the prefix each prompt shares with the one before (all of the first)."""
    counts, previous = [], []
    for tokens in prompts:
        shared = 0
        for a, b in zip(previous, tokens):
            if a != b:
                break
            shared += 1
        counts.append(len(tokens) - shared)
        previous = tokens
    return counts


def time_calls(calls: list[list[dict]]) -> list[float]:
    """Seconds of each call on the real local model (prompt evaluation and one token)."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(find_gguf_model()), n_ctx=8192, verbose=False)
    seconds = []
    for messages in calls:
        start = time.perf_counter()
        llm.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0)
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", choices=sorted(TABLES), default="nb201")
    parser.add_argument("--before", default="e8ac06e", help="git revision of the earlier layout")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--per-call", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time", action="store_true", help="also time every call on the local model")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    from llama_cpp import Llama

    vocab = Llama(model_path=str(find_gguf_model()), vocab_only=True, verbose=False)
    layouts = {f"before ({args.before})": prompt_module_at(args.before), "now": current_prompt}
    results: dict[str, Any] = {"table": args.table, "queries": args.queries, "per_call": args.per_call}
    for name, module in layouts.items():
        calls = replay_prompts(args.table, args.queries, args.per_call, args.seed, module.build_messages)
        tokens = [vocab.tokenize(chatml(m).encode(), add_bos=False, special=True) for m in calls]
        evaluated = evaluated_tokens(tokens)
        entry = {
            "calls": len(calls),
            "prompt_tokens_mean": round(statistics.mean(map(len, tokens)), 1),
            "prompt_tokens_max": max(map(len, tokens)),
            "evaluated_tokens_mean": round(statistics.mean(evaluated), 1),
            "evaluated_tokens_total": sum(evaluated),
        }
        if args.time:
            seconds = time_calls(calls)
            entry.update(seconds_total=round(sum(seconds), 1), seconds_per_call_mean=round(statistics.mean(seconds), 2))
        results[name] = entry
        print(f"{name}: {json.dumps(entry)}", flush=True)
    if args.output:
        args.output.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
