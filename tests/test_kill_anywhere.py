"""The kill-anywhere harness (``benchmarks.kill_anywhere``), one life per project searcher: the
command is SIGKILLed (driver and Ray) at drawn moments, resumed each time, and every check holds.

The full table (at least 30 kills per searcher, random included) is the benchmark; this keeps the
harness and what it checks working in CI at the cost of a few minutes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from llm_server import FakeLLMServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks/ sits beside tests/

from benchmarks.kill_anywhere import SPACE, check_files, run_life  # noqa: E402

pytestmark = pytest.mark.slow  # whole searches, Ray clusters or killed drivers: minutes


@pytest.mark.slow
@pytest.mark.parametrize("searcher", ["graph"])  # the LLM searcher's kills are in test_resume.py and the benchmark
def test_a_search_killed_twice_finishes_and_every_check_holds(searcher: str, tmp_path: Path) -> None:
    lines: list[str] = []
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    with FakeLLMServer(SPACE) as server:
        env.update(OPENAI_API_KEY="sk-kill-test", OPENAI_BASE_URL=server.url)
        life = run_life(
            searcher,
            life=0,
            seed=7,
            folder=tmp_path / "life",
            horizon=25.0,
            max_kills=2,
            server=server if searcher == "gpt4" else None,
            env=env,
            say=lines.append,
        )
    assert life["finished"], lines
    assert len(life["kills"]) == 2, lines
    assert [k["problems"] for k in life["kills"]] == [[], []], lines


def test_a_cut_off_state_file_is_found(tmp_path: Path) -> None:
    """The file check would see what a kill mid-write leaves: a truncated JSON or memory file."""
    tune = tmp_path / "tune"
    tune.mkdir()
    (tune / "experiment_state-x.json").write_text('{"trial_data": [')
    (tune / "search-memory.parquet").write_bytes(b"PAR1\x00\x01")
    problems = check_files(tmp_path)
    assert any("experiment_state-x.json is cut off" in p for p in problems)
    assert any("search-memory.parquet does not load" in p for p in problems)
