"""How fast the local LLM (SmolLM2-135M in llama.cpp) reads a prompt and writes an answer, under the
server settings ``LocalLLMServer`` chooses against llama-cpp-python's server defaults.

A GPT4Searcher call with the local model re-reads the part of its prompt after the cached prefix
(about 1,000 tokens, at 3,000-4,000 tokens of context) and writes 100-300 tokens of JSON. This
measures exactly those two things, in-process (no HTTP), for each setting in turn:

- ``tail``: tokens per second evaluating 1,000 prompt tokens after 3,000 already in the context;
- ``generate``: tokens per second writing 64 tokens after them.

Best of ``--repeats`` runs each (the machine may be busy). Run it on a quiet machine:

    python -m benchmarks.llm_speed [--threads 2] [--repeats 3] [--output benchmarks/results/llm_speed.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ray_diffnas.searchers.llm.local_server import find_gguf_model, usable_cores

# (name, Llama keyword arguments): the server's defaults first, then each change LocalLLMServer makes.
SETTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("server defaults (flash attention off, logits for every token)", {"flash_attn": False, "logits_all": True}),
    ("flash attention", {"flash_attn": True, "logits_all": True}),
    ("flash attention, last-token logits (LocalLLMServer)", {"flash_attn": True, "logits_all": False}),
)
CONTEXT, TAIL, GENERATED = 3000, 1000, 64


def prompt_tokens(llm: Any) -> list[int]:
    """A prompt shaped like the searcher's outcome log: short lines of fields and figures."""
    lines = [
        f'{i}. {{"base_channels": {16 * (1 + i % 3)}, "channel_mults": [1, {1 + i % 2}], "attention": '
        f"{str(i % 2 == 0).lower()}}} -> rfid {1 + (i * 37 % 100) / 40:.3f}, latency_ms {2 + i % 7:.2f}"
        for i in range(400)
    ]
    tokens = llm.tokenize("\n".join(lines).encode())
    if len(tokens) < CONTEXT + TAIL:
        raise SystemExit(f"the synthetic prompt has {len(tokens)} tokens, fewer than {CONTEXT + TAIL}")
    return tokens[: CONTEXT + TAIL]


def measure(model: Path, threads: int, options: dict[str, Any]) -> dict[str, float]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(model), n_ctx=8192, n_threads=threads, n_threads_batch=threads, verbose=False, **options)
    tokens = prompt_tokens(llm)
    llm.eval(tokens[:CONTEXT])
    start = time.perf_counter()
    llm.eval(tokens[CONTEXT:])
    tail = TAIL / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(GENERATED):  # greedy: the same tokens every run
        token = llm.sample(temp=0.0)
        llm.eval([token])
    generate = GENERATED / (time.perf_counter() - start)
    del llm
    return {"tail_tokens_per_s": tail, "generate_tokens_per_s": generate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=usable_cores())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/llm_speed.json"))
    args = parser.parse_args()
    model = find_gguf_model()
    results = []
    for name, options in SETTINGS:
        runs = [measure(model, args.threads, options) for _ in range(args.repeats)]
        best = {key: round(max(run[key] for run in runs), 1) for key in runs[0]}
        print(
            f"{name}: prompt tail {best['tail_tokens_per_s']} tok/s, generation {best['generate_tokens_per_s']} tok/s"
        )
        results.append({"setting": name, **options, **best})
    base = results[0]
    for row in results:
        row["tail_speed_up"] = round(row["tail_tokens_per_s"] / base["tail_tokens_per_s"], 2)
    summary = {"model": model.name, "threads": args.threads, "context": CONTEXT, "tail": TAIL, "settings": results}
    args.output.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
