"""HybridSearcher: an LLM's candidates, screened by the graph model, over a scripted loopback LLM (the real
openai client) on a hand-driven NAS-Bench-201 search whose objective the model can learn."""

from __future__ import annotations

import itertools
import json

import pytest
from llm_server import FakeLLMServer, Reply
from test_graph_searcher import SMALL_MODEL, objective

from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.hybrid import HybridSearcher
from ray_diffnas.searchers.llm.searcher import GPT4Searcher
from ray_diffnas.spaces.nb201 import OPERATIONS, NB201Space

SPACE = NB201Space()
WARMUP = 8
EXCELLENT = {"ops": ["nor_conv_3x3"] * 6}  # the most convolutions: the best accuracy under `objective`
# No convolution at all: the worst accuracies (distinct cells of skips and pools)
NO_CONV = itertools.product(["skip_connect", "avg_pool_3x3"], repeat=6)
POOR = [{"ops": list(ops)} for ops in itertools.islice(NO_CONV, 6)]


def _hybrid(server: FakeLLMServer, **overrides) -> HybridSearcher:
    llm = GPT4Searcher(base_url=server.url, api_key="sk-test", max_retries=0, timeout=5.0)
    options = dict(
        space=SPACE,
        metric="acc",
        mode="max",
        llm=llm,
        llm_candidates=WARMUP,
        warmup=WARMUP,
        retrain_every=3,
        train_steps=200,
        retrain_steps=30,
        candidates=16,
        prior_graphs=128,
        model=SMALL_MODEL,
        seed=0,
    )
    return HybridSearcher(**{**options, **overrides})


def _run(searcher: HybridSearcher, trials: int, start: int = 0) -> None:
    for i in range(start, start + trials):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", objective(SPACE.validate(config["arch"])))


def test_the_hybrid_serves_the_llms_excellent_candidate_and_screens_out_its_poor_ones() -> None:
    with FakeLLMServer(SPACE, seed=1) as server:
        # The first reply (sampled by the server: a plain LLM) fills the warm-up; the second is scripted.
        server.script = [Reply(), Reply(json.dumps({"reasoning": "r", "proposals": [*POOR[:3], EXCELLENT, *POOR[3:]]}))]
        searcher = _hybrid(server, warmup_source="llm")
        _run(searcher, WARMUP + 6)
        records = searcher.memory.records()
        assert [r.proposer for r in records[:WARMUP]] == ["llm"] * WARMUP  # the warm-up is the LLM's
        after = records[WARMUP:]
        served_llm = [r.arch_key for r in after if r.proposer == "llm"]
        poor_keys = {SPACE.key(p) for p in POOR}
        assert SPACE.key(EXCELLENT) in served_llm, [(r.proposer, r.arch_key) for r in after]
        assert not poor_keys & set(served_llm)  # the screen kept every poor candidate from running
        screen = searcher.llm_screen
        assert screen["received"] >= 2 * WARMUP - 1 and screen["poor"] >= len(POOR), screen
        summary = searcher.llm_summary()
        assert summary["served"] == WARMUP + len(served_llm) and summary["calls"] == len(server.requests)
        assert summary["tokens_per_served_trial"] > 0
        pending = searcher.unbilled_tokens  # set aside by the screen, for the next record
        assert tuple(map(sum, zip(searcher.memory.tokens(), pending))) == (
            searcher.llm.usage["prompt_tokens"],
            searcher.llm.usage["completion_tokens"],
        )
        if len(server.requests) >= 3:  # asked again: its prompt names what the screen did with its candidates
            prompt = server.user_prompts()[2]
            assert "screened out, not run" in prompt and SPACE.key(EXCELLENT) in prompt


def test_a_random_warm_up_asks_the_llm_only_once_a_model_can_screen_its_candidates() -> None:
    with FakeLLMServer(SPACE, seed=5) as server:
        server.script = [Reply(json.dumps({"reasoning": "r", "proposals": [*POOR[:3], EXCELLENT, *POOR[3:]]}))]
        searcher = _hybrid(server, warmup_source="random")
        _run(searcher, WARMUP)
        assert [r.proposer for r in searcher.memory.records()] == ["random"] * WARMUP
        assert not server.requests  # no model to screen with yet: the LLM is not asked
        _run(searcher, 6, start=WARMUP)
        assert len(server.requests) >= 1  # asked by the first round of the model
    served = [r.arch_key for r in searcher.memory.records()[WARMUP:] if r.proposer == "llm"]
    assert not {SPACE.key(p) for p in POOR} & set(served)  # every LLM candidate went through the screen
    screen = searcher.llm_screen
    assert screen["received"] == len(served) + screen["poor"] + screen["infeasible"] + len(searcher._pool), screen


def test_an_llm_none_of_whose_candidates_run_is_asked_less_often_until_one_does() -> None:
    poor = Reply(json.dumps({"reasoning": "r", "proposals": POOR}))
    excellent = Reply(json.dumps({"reasoning": "r", "proposals": [EXCELLENT, *POOR[:2]]}))
    with FakeLLMServer(SPACE, seed=4) as server:
        server.script = [Reply(), poor, poor, excellent]
        searcher = _hybrid(server, warmup_source="llm")
        asked_at: list[int] = []  # finished trials at each call of the LLM
        ask = searcher._ask_llm

        def spy() -> list | None:
            asked_at.append(len(searcher._finished()))
            return ask()

        searcher._ask_llm = spy  # type: ignore[method-assign]
        _run(searcher, WARMUP + 24)
    # the warm-up's batch ran; after each of the next two (all screened out) it waited longer
    gaps = [b - a for a, b in itertools.pairwise(asked_at[1:4])]
    assert len(gaps) == 2 and gaps[1] > gaps[0] > 2, asked_at
    served = [r.arch_key for r in searcher.memory.records()[WARMUP:] if r.proposer == "llm"]
    assert served == [SPACE.key(EXCELLENT)], (served, asked_at)
    assert len(asked_at) > 4 and asked_at[4] - asked_at[3] < gaps[1], asked_at  # once one ran, asked sooner
    # The tokens of the batches screened out went to later records: the memory's columns add up to the usage.
    usage = searcher.llm.usage
    recorded = searcher.memory.tokens()
    carriers = {r.proposer for r in searcher.memory.records() if r.prompt_tokens}  # its cost per served trial
    assert carriers and carriers <= {"llm", "repair"}, carriers
    assert recorded[0] + searcher.unbilled_tokens[0] == usage["prompt_tokens"] > 0
    assert recorded[1] + searcher.unbilled_tokens[1] == usage["completion_tokens"] > 0
    restored = _hybrid(server)
    restored.set_state(searcher.get_state())
    assert restored.get_state()["llm_wait"] == searcher.get_state()["llm_wait"]


def test_the_hybrid_state_survives_save_and_restore(tmp_path) -> None:
    with FakeLLMServer(SPACE, seed=2) as server:
        searcher = _hybrid(server)
        _run(searcher, WARMUP + 2)
        path = searcher.save(str(tmp_path / "memory.parquet"))
        blank = _hybrid(server)
        blank.restore(str(path))
        assert blank.llm_screen == searcher.llm_screen
        assert set(blank._pool) == set(searcher._pool)
        assert blank.llm.usage == searcher.llm.usage and blank.llm.calls == searcher.llm.calls


def test_an_unreachable_llm_leaves_the_graph_searcher_proposing_alone() -> None:
    llm = GPT4Searcher(base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=0, timeout=0.5)
    searcher = HybridSearcher(
        space=SPACE, metric="acc", mode="max", llm=llm, warmup=3, model=SMALL_MODEL, seed=0, warmup_source="llm"
    )
    _run(searcher, 3)
    assert [r.proposer for r in searcher.memory.records()] == ["random"] * 3
    assert searcher.llm.usage["failed_calls"] == 3  # asked again only once more trials had finished


def test_bad_hybrid_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="llm must be a GPT4Searcher"):
        HybridSearcher(space=SPACE, metric="acc", mode="max", llm="gpt-4o")
    with pytest.raises(ConfigError, match="llm_candidates must be an integer >= 1"):
        HybridSearcher(space=SPACE, metric="acc", mode="max", llm=GPT4Searcher(), llm_candidates=0)
    with pytest.raises(ConfigError, match=r"warmup_source must be one of \['random', 'llm'\]"):
        HybridSearcher(space=SPACE, metric="acc", mode="max", llm=GPT4Searcher(), warmup_source="gpt4")


@pytest.mark.slow
def test_a_table_benchmark_run_of_the_hybrid_keeps_what_its_screen_rejected(
    ray_session, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench-table's runs keep the screened-out candidates, so the table can say what they would have scored."""
    import pandas as pd

    from ray_diffnas.bench.harness import RUNS_FOLDER, TableBenchmark, _jsonable, _read_cached_run
    from ray_diffnas.bench.table import load_table

    cells = [SPACE.validate({"ops": list(ops)}) for ops in itertools.product(OPERATIONS, repeat=6)]
    table = load_table(pd.DataFrame([{"arch": cell.to_string(), **objective(cell)} for cell in cells]), SPACE)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    bench = TableBenchmark(table, "acc", "max", warmup=4)
    with FakeLLMServer(SPACE, seed=3) as server:  # a plain LLM: valid, varied cells
        record = bench.cached_run("hybrid", 0, 12, tmp_path, llm_url=server.url)
    assert len(record.trajectory) == 12 and record.trajectory["in_table"].all()
    assert record.screened_out and {item["kind"] for item in record.screened_out} <= {"poor", "infeasible"}
    settings = json.dumps(_jsonable(bench.run_settings(12)), sort_keys=True)
    kept = _read_cached_run(tmp_path / RUNS_FOLDER / "hybrid-seed0.parquet", settings)
    assert kept is not None and kept.screened_out == record.screened_out
    screen = bench.summarize([record], 12)["searchers"]["hybrid"]["llm_screen"]
    assert screen["screened_out"] == len(record.screened_out) and screen["screened_out_share"] > 0
    assert screen["screened_out_mean_regret"] is not None  # every candidate of this table has its true value
