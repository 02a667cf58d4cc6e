"""The LLM searcher on a space that is not a UNet: its prompt is built from what the space and the
objective say of themselves, and ``ray-diffnas bench-table --searcher gpt4`` runs on a NAS-Bench-201
table against a loopback OpenAI-compatible server (the real ``openai`` client, real Tune)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from llm_server import FakeLLMServer

from ray_diffnas.app.cli import main
from ray_diffnas.searchers.llm.prompt import build_messages
from ray_diffnas.searchers.memory import SearchMemory
from ray_diffnas.searchers.objective import Objective
from ray_diffnas.spaces.nb201 import OPERATIONS, NB201Space

UNET_WORDS = ("unet", "denoiser", "diffusion", "fid", "channel_mult", "base_channels", "latency_ms")


def _table(tmp_path: Path, rows: int = 200) -> Path:
    space, rng = NB201Space(), np.random.default_rng(0)
    cells = sorted({space.sample(rng).key() for _ in range(rows)})
    frame = pd.DataFrame(
        {
            "arch": cells,
            "cifar10_valid_acc": [40.0 + c.count("conv") * 8 + c.count("skip") for c in cells],
            "flops_m": [c.count("conv") * 20.0 for c in cells],
        }
    )
    path = tmp_path / "nb201.csv"
    frame.to_csv(path, index=False)
    return path


def _check_about_the_table(prompt: str) -> None:
    assert "NAS-Bench-201 cell" in prompt
    assert all(op in prompt for op in OPERATIONS)  # the cell's operations
    assert "'cifar10_valid_acc' (higher is better)" in prompt  # the table's objective
    assert not [w for w in UNET_WORDS if w in prompt.lower()], prompt


def test_the_prompt_for_an_nb201_table_is_about_the_cell() -> None:
    memory = SearchMemory("cifar10_valid_acc", "max")
    memory.propose("t1", {"arch": {"ops": ["nor_conv_3x3"] * 6}}, "|nor_conv_3x3~0|+...", "llm")
    memory.complete("t1", {"cifar10_valid_acc": 91.0, "flops_m": 120.0}, status="completed")
    objective = Objective("cifar10_valid_acc", "max", ["flops_m<=100"])
    system, user = build_messages(NB201Space(), objective, memory, 3, "1 trial finished, 10 in all", [], [])
    _check_about_the_table(system["content"] + user["content"])
    assert "flops_m<=100" in user["content"] and "flops_m 120" in user["content"]  # constraints and their metric


def test_the_best_so_far_shown_are_the_ones_that_met_the_constraints() -> None:
    memory = SearchMemory("cifar10_valid_acc", "max")
    for i, (ops, acc, flops) in enumerate([("nor_conv_3x3", 91.0, 120.0), ("skip_connect", 70.0, 0.0)]):
        key = NB201Space().validate({"ops": [ops] * 6}).key()
        memory.propose(f"t{i}", {"arch": {"ops": [ops] * 6}}, key, "llm")
        memory.complete(f"t{i}", {"cifar10_valid_acc": acc, "flops_m": flops}, status="completed")
    constrained = Objective("cifar10_valid_acc", "max", ["flops_m<=100"])
    user = build_messages(NB201Space(), constrained, memory, 3, "2 finished", [])[1]["content"]
    best = user[user.index("Best so far") :]
    assert best.startswith("Best so far of those that met the constraints (top 1):")
    assert "skip_connect" in best and "nor_conv_3x3" not in best  # 91 % broke the FLOPs bound
    free = build_messages(NB201Space(), Objective("cifar10_valid_acc", "max"), memory, 3, "2 finished", [])
    assert "Best so far (top 2):" in free[1]["content"]


def test_bench_table_runs_the_llm_searcher_on_nb201(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ray_session
) -> None:
    table = _table(tmp_path)
    with FakeLLMServer(NB201Space()) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        code = main(
            [
                "bench-table",
                "--table",
                str(table),
                "--objective",
                "cifar10_valid_acc:max",
                "--searcher",
                "gpt4",
                "--budget",
                "6",
                "--seeds",
                "1",
                "--output",
                str(tmp_path / "out"),
            ]
        )
        prompts = server.user_prompts()
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (
        summary["searchers"]["gpt4"]["queries"] == [6]
        and summary["searchers"]["gpt4"]["not_in_table"] == [0]
        or summary["searchers"]["gpt4"]["queries"] == [6]
    )
    assert prompts, "the LLM was never asked"
    for prompt in prompts:
        _check_about_the_table(prompt)
    schema = server.requests[0]["response_format"]["json_schema"]
    assert schema["name"] == "nb201_proposals" and "ops" in json.dumps(schema["schema"])
