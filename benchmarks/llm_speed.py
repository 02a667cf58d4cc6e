"""How fast the local LLM (SmolLM2-135M in llama.cpp) reads a prompt and writes an answer, under the
server settings ``LocalLLMServer`` chooses against llama-cpp-python's server defaults, on an idle
machine and beside busy processes (``--busy``: what a search's trials or a second search are).

A GPT4Searcher call with the local model re-reads the part of its prompt after the cached prefix
(about 1,000 tokens, at 3,000-4,000 tokens of context) and writes 100-300 tokens of JSON. This
measures exactly those two things, in-process (no HTTP), for each setting in turn:

- ``tail``: tokens per second evaluating 1,000 prompt tokens after 3,000 already in the context;
- ``generate``: tokens per second writing 32 tokens after them.

Each setting runs in a fresh process (OpenMP reads its wait policy at start); best of ``--repeats``
runs each. Run it on an otherwise quiet machine:

    python -m benchmarks.llm_speed [--threads 2] [--repeats 3] [--busy 0 1]
        [--output benchmarks/results/llm_speed.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

from ray_diffnas.searchers.llm.local_server import find_gguf_model, usable_cores

# (name, Llama keyword arguments, OpenMP wait policy or None for its default): the server's defaults first,
# then each change measured: flash attention (not adopted: it slows generation), then LocalLLMServer's.
SETTINGS: tuple[tuple[str, dict[str, Any], str | None], ...] = (
    ("server defaults", {"flash_attn": False, "logits_all": True}, None),
    ("+ flash attention", {"flash_attn": True, "logits_all": True}, None),
    ("+ last-token logits", {"flash_attn": False, "logits_all": False}, None),
    ("+ last-token logits, sleeping waits (LocalLLMServer)", {"flash_attn": False, "logits_all": False}, "PASSIVE"),
)
CONTEXT, TAIL, GENERATED = 3000, 1000, 32


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


def busy_loop() -> None:
    while True:
        pass


def measure_in_process(model: Path, threads: int, options: dict[str, Any], policy: str | None) -> dict[str, float]:
    """:func:`measure` in a fresh process with the OpenMP wait policy set before llama.cpp loads."""
    if policy is None:
        os.environ.pop("OMP_WAIT_POLICY", None)
    else:
        os.environ["OMP_WAIT_POLICY"] = policy
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (model, threads, options))


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
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="busy processes beside it, in turn")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/llm_speed.json"))
    args = parser.parse_args()
    model = find_gguf_model()
    results = []
    for busy in args.busy:
        burners = [multiprocessing.get_context("spawn").Process(target=busy_loop, daemon=True) for _ in range(busy)]
        for burner in burners:
            burner.start()
        try:
            for name, options, policy in SETTINGS:
                runs = [measure_in_process(model, args.threads, options, policy) for _ in range(args.repeats)]
                best = {key: round(max(run[key] for run in runs), 1) for key in runs[0]}
                print(
                    f"busy {busy}, {name}: prompt tail {best['tail_tokens_per_s']} tok/s, "
                    f"generation {best['generate_tokens_per_s']} tok/s",
                    flush=True,
                )
                results.append({"busy_processes": busy, "setting": name, **options, "omp_wait_policy": policy, **best})
        finally:
            for burner in burners:
                burner.terminate()
    summary = {"model": model.name, "threads": args.threads, "context": CONTEXT, "tail": TAIL, "settings": results}
    args.output.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
