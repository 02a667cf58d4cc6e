"""GPT4Searcher against a scripted OpenAI-compatible server over loopback HTTP (the real openai client)."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import pytest
from llm_server import FakeLLMServer, Reply

from ray_diffnas import UNetSpace
from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.llm.searcher import GPT4Searcher, reply_token_limit

SPACE = UNetSpace(image_size=8)
SENTINEL_KEY = "sk-SENTINEL-do-not-write-0123456789"


@pytest.fixture
def server():
    with FakeLLMServer(SPACE) as running:
        yield running


def make_searcher(server: FakeLLMServer, **kwargs) -> GPT4Searcher:
    options = {
        "space": SPACE,
        "metric": "rfid",
        "mode": "min",
        "base_url": server.url,
        "api_key": SENTINEL_KEY,
        "proposals_per_call": 3,
        "max_retries": 2,
        "timeout": 2.0,
        **kwargs,
    }
    return GPT4Searcher(**options)


def good(*archs: dict) -> Reply:
    return Reply(content=json.dumps({"reasoning": "r", "proposals": list(archs)}))


A = {
    "base_channels": 8,
    "channel_mult": [1, 2],
    "num_res_blocks": [1, 1],
    "attention_resolutions": [],
    "num_heads": 1,
    "dropout": 0.0,
    "mid_attention": False,
}
B = {**A, "base_channels": 16}
C = {**A, "base_channels": 24}
D = {**A, "base_channels": 32}


def test_one_call_serves_several_concurrent_trials(server: FakeLLMServer) -> None:
    searcher = make_searcher(server)
    configs = [searcher.suggest(f"t{i}") for i in range(3)]
    assert len(server.requests) == 1
    keys = [SPACE.validate(c["arch"]).key() for c in configs]
    assert len(set(keys)) == 3 and set(searcher.live.values()) == set(keys)
    records = [searcher.memory.get(f"t{i}") for i in range(3)]
    assert {r.proposer for r in records} == {"llm"}
    assert sum(r.prompt_tokens for r in records) == searcher.usage["prompt_tokens"] > 0
    assert [c["outcome"] for c in searcher.calls] == ["ok"] and searcher.calls[0]["prompt_tokens"] > 0
    assert server.authorizations[0] == f"Bearer {SENTINEL_KEY}"
    body = server.requests[0]
    assert body["model"] == "gpt-4o" and body["response_format"]["type"] == "json_schema"
    assert body["max_tokens"] == reply_token_limit(searcher.proposals_per_call)  # a looping reply ends


def test_malformed_json_gets_one_repair_round(server: FakeLLMServer) -> None:
    server.script = [Reply(content="Sure! Here are some ideas: {not json"), good(A, B, C)]
    searcher = make_searcher(server)
    config = searcher.suggest("t1")
    assert len(server.requests) == 2
    assert "not the requested JSON" in server.user_prompts()[1]
    assert config["arch"] == A and searcher.memory.get("t1").proposer == "repair"
    assert [r.status for r in searcher.memory.records(["invalid"])] == ["invalid"]


def test_out_of_range_values_are_sent_back_with_the_validation_errors(server: FakeLLMServer) -> None:
    bad = {**A, "base_channels": 12, "dropout": 1.5}
    server.script = [good(bad, B, C), good(D)]
    searcher = make_searcher(server)
    configs = [searcher.suggest(f"t{i}") for i in range(3)]
    repair_prompt = server.user_prompts()[1]
    assert "base_channels must be a multiple of 8" in repair_prompt
    assert [c["arch"]["base_channels"] for c in configs] == [16, 24, 32]
    assert [searcher.memory.get(f"t{i}").proposer for i in range(3)] == ["llm", "llm", "repair"]
    invalid = searcher.memory.records(["invalid"])
    assert len(invalid) == 1 and "dropout" in invalid[0].error


def test_duplicates_are_refused_and_filled_by_a_marked_fallback(server: FakeLLMServer) -> None:
    searcher = make_searcher(server, proposals_per_call=2)
    server.script = [good(A, B)]
    searcher.suggest("t1"), searcher.suggest("t2")
    server.script = [good(A, B), good(A)]  # both duplicates, and the repair repeats one
    config = searcher.suggest("t3")
    assert "already tried or proposed" in server.user_prompts()[2]
    record = searcher.memory.get("t3")
    assert record.proposer == "fallback" and "invalid or duplicates" in record.note
    assert SPACE.validate(config["arch"]).key() not in {SPACE.key(A), SPACE.key(B)}


def test_the_tokens_of_a_reply_of_duplicates_only_are_carried_by_the_next_record(server: FakeLLMServer) -> None:
    """Two calls (the reply and its repair) that produce no record: their tokens go to the fallback served
    for them, so that the memory's token columns add up to what the LLM was paid for."""
    searcher = make_searcher(server, proposals_per_call=2)
    server.script = [good(A, B)]
    searcher.suggest("t1"), searcher.suggest("t2")
    server.script = [good(A, B), good(B)]  # duplicates only, twice
    searcher.suggest("t3")
    fallback = searcher.memory.get("t3")
    assert fallback.proposer == "fallback" and fallback.prompt_tokens > 0 and fallback.completion_tokens > 0
    assert searcher.memory.tokens() == (searcher.usage["prompt_tokens"], searcher.usage["completion_tokens"])
    assert searcher.unbilled_tokens == (0, 0)


def test_the_memory_and_what_is_set_aside_add_up_to_the_usage_while_proposals_wait(server: FakeLLMServer) -> None:
    """A reply with one valid proposal, then its repair with two more: the first trial recorded carries both
    calls (the repair's tokens rode on a proposal still waiting, in no record, when the search could end)."""
    searcher = make_searcher(server)
    server.script = [good(A, {**A, "dropout": 1.5}), good(B, C)]
    searcher.suggest("t1")
    usage = (searcher.usage["prompt_tokens"], searcher.usage["completion_tokens"])
    assert len(server.requests) == 2 and len(searcher._pending) == 2  # B and C wait
    assert (searcher.memory.get("t1").prompt_tokens, searcher.memory.get("t1").completion_tokens) == usage
    assert searcher.memory.tokens() == usage and searcher.unbilled_tokens == (0, 0)


def test_429_honours_retry_after(server: FakeLLMServer) -> None:
    server.script = [Reply(status=429, headers={"Retry-After": "1"}), good(A, B, C)]
    searcher = make_searcher(server)
    start = time.perf_counter()
    config = searcher.suggest("t1")
    assert time.perf_counter() - start >= 1.0
    assert len(server.requests) == 2 and config["arch"] == A


def test_server_errors_are_retried(server: FakeLLMServer) -> None:
    server.script = [Reply(status=500), Reply(status=503), good(A, B, C)]
    searcher = make_searcher(server)
    assert searcher.suggest("t1")["arch"] == A
    assert len(server.requests) == 3


def test_a_server_slower_than_the_timeout_falls_back_without_hanging(server: FakeLLMServer) -> None:
    server.script = [Reply(delay=3.0), Reply(delay=3.0)]
    searcher = make_searcher(server, timeout=0.5, max_retries=1)
    start = time.perf_counter()
    config = searcher.suggest("t1")
    assert time.perf_counter() - start < 10
    record = searcher.memory.get("t1")
    assert record.proposer == "fallback" and "APITimeoutError" in record.note
    SPACE.validate(config["arch"])
    assert searcher.usage["failed_calls"] == 1
    assert searcher.calls[-1]["outcome"] == "APITimeoutError"


def test_garbage_bytes_and_an_unreachable_endpoint_fall_back(server: FakeLLMServer) -> None:
    server.script = [Reply(raw_body=b"\x00\xffnot http json")]
    searcher = make_searcher(server, max_retries=0)
    searcher.suggest("t1")
    assert searcher.memory.get("t1").proposer == "fallback"
    dead = make_searcher(server, base_url="http://127.0.0.1:9/v1", max_retries=0)
    dead.suggest("t1")
    assert "APIConnectionError" in dead.memory.get("t1").note


def test_second_prompt_contains_the_first_trials_outcomes(server: FakeLLMServer) -> None:
    searcher = make_searcher(server, proposals_per_call=2)
    server.script = [good(A, B)]
    searcher.suggest("t1"), searcher.suggest("t2")
    for i, value in enumerate([40.0, 21.5, 17.25], start=1):
        searcher.on_trial_result("t1", {"rfid": value, "training_iteration": i, "latency_ms": 3.5})
    searcher.on_trial_complete("t1", {"rfid": 17.25, "training_iteration": 3}, error=False)
    searcher.on_trial_complete("t2", {"rfid": 55.0, "training_iteration": 1}, error=True)
    searcher.suggest("t3")
    prompt = server.user_prompts()[1]
    assert SPACE.key(A) in prompt and "[40.0, 21.5, 17.25]" in prompt
    assert f"{SPACE.key(B)} [failed" in prompt


def test_save_and_restore_into_a_blank_searcher_keeps_the_pending_trial(server: FakeLLMServer, tmp_path: Path) -> None:
    searcher = make_searcher(server)
    for trial in ("1", "2", "not_completed"):
        searcher.suggest(trial)
    searcher.on_trial_complete("1", {"rfid": 10.0, "training_iteration": 4})
    searcher.on_trial_complete("2", {"rfid": 12.0, "training_iteration": 1})
    path = tmp_path / "memory.parquet"
    searcher.save(str(path))
    restored = GPT4Searcher()
    restored.restore(str(path))
    assert "not_completed" in restored.live and restored.space == SPACE
    # as JSON: a curve's unreported iterations are NaN, which equals nothing
    records = [json.dumps(vars(r), sort_keys=True) for r in searcher.memory.records()]
    assert [json.dumps(vars(r), sort_keys=True) for r in restored.memory.records()] == records
    assert restored.rng.bit_generator.state == searcher.rng.bit_generator.state
    assert restored.usage == searcher.usage
    assert SENTINEL_KEY.encode() not in path.read_bytes()


def test_the_api_key_is_never_pickled(server: FakeLLMServer) -> None:
    searcher = make_searcher(server)
    searcher.suggest("t1")  # builds the client
    blob = pickle.dumps(searcher)
    assert SENTINEL_KEY.encode() not in blob
    clone = pickle.loads(blob)
    assert clone._client is None and clone.base_url == server.url


def test_cost_ceiling_stops_llm_calls(server: FakeLLMServer) -> None:
    searcher = make_searcher(server, max_cost_usd=1e-9)
    searcher.suggest("t1")
    calls = len(server.requests)
    for i in range(2, 6):
        searcher.suggest(f"t{i}")
    assert len(server.requests) == calls == 1
    assert "cost ceiling" in searcher.memory.get("t5").note


def test_credentials_in_the_base_url_are_not_saved(server: FakeLLMServer, tmp_path: Path) -> None:
    searcher = make_searcher(
        server, base_url=server.url.replace("http://", "http://user:pw-secret@") + "?api-key=q-secret"
    )
    path = tmp_path / "memory.parquet"
    searcher.save(str(path))
    data = path.read_bytes()
    assert b"pw-secret" not in data and b"q-secret" not in data
    assert server.url.encode() in data


def test_the_local_model_is_waited_for_longer_than_an_api() -> None:
    from ray_diffnas.searchers import factory
    from ray_diffnas.searchers.llm.local_server import MODEL_ALIAS, REQUEST_TIMEOUT, RESPONSE_FORMAT
    from ray_diffnas.searchers.objective import Objective
    from ray_diffnas.spaces.nb201 import NB201Space

    def llm(name: str, model: str | None) -> GPT4Searcher:
        searcher = factory.make_searcher(name, NB201Space(), Objective("acc", "max"), llm_model=model).search_alg
        return searcher.llm if name == "hybrid" else searcher

    assert llm("gpt4", MODEL_ALIAS).timeout == llm("hybrid", MODEL_ALIAS).timeout == REQUEST_TIMEOUT
    assert llm("gpt4", None).timeout == GPT4Searcher().timeout < REQUEST_TIMEOUT
    # llama.cpp's server reads the schema from json_object; OpenAI's API takes json_schema.
    assert llm("gpt4", MODEL_ALIAS).response_format == llm("hybrid", MODEL_ALIAS).response_format == RESPONSE_FORMAT
    assert llm("gpt4", None).response_format == "json_schema"
    # A searcher made by hand for the local model (as examples/gpt4_search.py --local makes it) gets the same
    by_hand = GPT4Searcher(model=MODEL_ALIAS, base_url="http://127.0.0.1:1/v1")
    assert (by_hand.timeout, by_hand.response_format) == (REQUEST_TIMEOUT, RESPONSE_FORMAT)
    assert GPT4Searcher(model=MODEL_ALIAS, timeout=5.0).timeout == 5.0  # what is given wins
    with pytest.raises(ConfigError, match="response_format must be one of"):
        GPT4Searcher(response_format="yaml")


def test_a_stalled_searcher_asks_the_llm_again_only_after_a_trial_ends(server: FakeLLMServer) -> None:
    """Tune calls ``suggest`` in a loop while a trial runs: with nothing new to propose, the LLM's invalid
    answers (each an ``invalid`` record) must not count as trials ending and make it ask over and over."""
    one = UNetSpace(
        8, base_channels=(8,), channel_mults=(1,), num_levels=(2,), num_res_blocks=(1,), attention_max_resolution=0,
        num_heads=(1,), dropout=(0.0,), mid_attention=(False,),
    )  # fmt: skip
    assert len(one.enumerate()) == 1
    invalid = Reply(content=json.dumps({"reasoning": "r", "proposals": [{**A, "base_channels": 12}]}))
    server.script = [invalid] * 40
    searcher = make_searcher(server, space=one)
    assert searcher.suggest("t1") is not None  # the one architecture (a fallback: the LLM's is invalid)
    assert searcher.suggest("t2") is None  # nothing new while t1 runs
    asked = len(server.requests)
    assert searcher.suggest("t3") is None and searcher.suggest("t4") is None
    assert len(server.requests) == asked and asked > 0  # no trial ended since: not asked again
