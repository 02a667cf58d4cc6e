"""The LLM fault table: a real Tune search per fault, the fault injected by a loopback OpenAI-compatible
server (the real ``openai`` client on the other end). Counts trials asked for, trials finished,
crashes, and who proposed what.

    python -m benchmarks.llm_faults [--output benchmarks/results/llm_faults.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import ray  # noqa: E402
from llm_server import FakeLLMServer, Reply  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.schedulers import ASHAScheduler  # noqa: E402

from benchmarks.report import report  # noqa: E402
from ray_diffnas import GPT4Searcher, UNetSpace, train_diffusion  # noqa: E402

SPACE = UNetSpace(image_size=8, base_channels=(8, 16), channel_mults=(1, 2), num_res_blocks=(1,))
TRIALS = 4
A = {
    "base_channels": 8,
    "channel_mult": [1, 2],
    "num_res_blocks": [1, 1],
    "attention_resolutions": [],
    "num_heads": 1,
    "dropout": 0.0,
    "mid_attention": False,
}


def _answer(*archs: dict) -> Reply:
    return Reply(content=json.dumps({"reasoning": "r", "proposals": list(archs)}))


FAULTS = {
    "none": [],
    "malformed JSON": [Reply(content="{this is not json")] * 2,
    "out-of-range values": [_answer({**A, "base_channels": 12}, {**A, "dropout": 0.7})] * 2,
    "duplicates": [_answer(A, A)] * 4,
    "429 + Retry-After": [Reply(status=429, headers={"Retry-After": "1"})] * 2,
    "500 / 503": [Reply(status=500), Reply(status=503)],
    "time-out": [Reply(delay=3.0)] * 6,
    "garbage bytes": [Reply(raw_body=b"\x00\xff<html>")] * 3,
}


def run_fault(name: str, script: list[Reply], storage: Path) -> dict:
    with FakeLLMServer(SPACE, seed=len(name)) as server:
        server.script = list(script)
        searcher = GPT4Searcher(
            base_url=server.url, api_key="sk-bench", proposals_per_call=2, timeout=1.0, max_retries=1
        )
        start = time.perf_counter()
        crashed = None
        try:
            analysis = tune.run(
                train_diffusion,
                config=SPACE.param_space(
                    dataset="digits",
                    max_iterations=2,
                    steps_per_iteration=5,
                    rfid_samples=64,
                    sampler_steps=2,
                    batch_size=16,
                ),
                metric="rfid",
                mode="min",
                search_alg=searcher,
                num_samples=TRIALS,
                scheduler=ASHAScheduler(max_t=2, grace_period=1),
                storage_path=str(storage),
                name=name.replace(" ", "_"),
                verbose=0,
                raise_on_failed_trial=False,
            )
            finished = sum(t.status == "TERMINATED" for t in analysis.trials)
            keys = {SPACE.key(t.config["arch"]) for t in analysis.trials}
        except Exception as error:  # a crash of the experiment is what this table is looking for
            crashed, finished, keys = repr(error), 0, set()
        proposers = Counter("invalid" if r.status == "invalid" else r.proposer for r in searcher.memory.records())
    return {
        "fault": name,
        "trials_asked": TRIALS,
        "trials_finished": finished,
        "distinct_architectures": len(keys),
        "crash": crashed,
        "llm_requests": len(server.requests),
        "proposers": dict(proposers),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="benchmarks/results/llm_faults.json")
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    storage = Path("/tmp/ray_diffnas_llm_faults")
    rows = [run_fault(name, script, storage) for name, script in FAULTS.items()]
    report(
        rows,
        [
            ("fault", "fault", str),
            ("trials_asked", "asked", str),
            ("trials_finished", "done", str),
            ("distinct_architectures", "distinct", str),
            ("crash", "crash", lambda c: "yes" if c else "no"),
            ("llm_requests", "requests", str),
            ("proposers", "proposers", str),
        ],
        args.output,
    )


if __name__ == "__main__":
    main()
