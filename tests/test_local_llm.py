"""One end-to-end search against the real local LLM (SmolLM2-135M in llama.cpp's server), from the CLI."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ray_diffnas import SearchMemory

pytestmark = pytest.mark.slow  # whole searches, Ray clusters or killed drivers: minutes

pytest.importorskip("llama_cpp", reason="needs the local-llm extra: pip install 'ray-diffnas[local-llm]'")


def test_cli_search_with_the_local_llm(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ray_diffnas",
            "search",
            "--searcher",
            "gpt4",
            "--llm",
            "local",
            "--dataset",
            "digits",
            "--num-samples",
            "2",
            "--max-iterations",
            "2",
            "--steps-per-iteration",
            "10",
            "--rfid-samples",
            "64",
            "--sampler-steps",
            "2",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Search memory:" in run.stdout
    memory, state = SearchMemory.load(out / "tune" / "search-memory.parquet")
    records = memory.records(["completed", "stopped"])
    assert len(records) == 2 and len({r.arch_key for r in records}) == 2
    assert any(r.proposer in ("llm", "repair") for r in records), [(r.proposer, r.note) for r in records]
    assert state["usage"]["calls"] >= 1 and state["usage"]["prompt_tokens"] > 0
    # The first request is in the form the server reads: answered, not refused and retried.
    assert (state["calls"][0]["outcome"], state["calls"][0]["format"]) == ("ok", "json_object_schema")
    assert state["base_url"].startswith("http://127.0.0.1:")
    port = int(state["base_url"].rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as probe:  # the server was stopped at the end
        assert probe.connect_ex(("127.0.0.1", port)) != 0
