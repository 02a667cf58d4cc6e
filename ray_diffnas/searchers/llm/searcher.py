"""GPT4Searcher: an LLM proposes architectures from the search memory (DiffNAS, arXiv:2310.04750)."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.base import MemorySearcher, Proposal
from ray_diffnas.searchers.llm.endpoint import EndpointFile
from ray_diffnas.searchers.llm.prompt import build_messages, proposals_schema, repair_message
from ray_diffnas.trainable.reports import COST_METRICS, METRIC_NOTES

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-4o"
# US$ per million (prompt, completion) tokens, where known; other models are counted, not priced.
PRICES_PER_MILLION = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
}
# Tried in this order until a server accepts one: OpenAI's structured output; llama.cpp's
# grammar-constrained JSON (json_object with a schema); plain JSON mode; free text.
RESPONSE_FORMATS = ("json_schema", "json_object_schema", "json_object", "text")
CALL_LOG_SIZE = 1000
REASONING_CHARS = 600  # of each reply's reasoning, kept in the call log
# A reply's token allowance: the reasoning, then each proposal (an architecture's JSON is 30-80 tokens).
# Without one a small model can loop inside a JSON string until the context is full: 15 minutes of CPU
# for one reply with the local 135M model.
REPLY_TOKENS, TOKENS_PER_PROPOSAL = 256, 128


def reply_token_limit(count: int) -> int:
    """``max_tokens`` of a call asking for ``count`` architectures.

    Example:
        >>> reply_token_limit(4)
        768
    """
    return REPLY_TOKENS + TOKENS_PER_PROPOSAL * count


class GPT4Searcher(MemorySearcher):
    """Ray Tune searcher in which an LLM (GPT-4 class, any OpenAI-compatible server) proposes architectures.

    Each call sends the space, the objective and a bounded digest of the search memory, and asks
    for ``proposals_per_call`` architectures as schema-constrained JSON; they serve that many
    concurrent trials. Invalid or duplicate proposals get one repair round; whatever is still
    missing is filled by mutating a good remembered architecture (marked ``fallback``). An
    unreachable endpoint never stops the search: it goes on with fallbacks and says so.

    Args:
        model: Model name (default ``gpt-4o``).
        api_key: API key; default ``$OPENAI_API_KEY``. Never saved: a restored searcher reads the
            environment again.
        base_url: Endpoint: a URL, or an :class:`EndpointFile` holding one (a server that may
            move, e.g. a resumed search's local LLM); default ``$OPENAI_BASE_URL`` or OpenAI's (vLLM,
            Ollama and llama.cpp servers speak the same protocol).
        temperature: Sampling temperature.
        proposals_per_call: Architectures asked for in one call.
        max_retries: Retries of one call (429 honouring ``Retry-After``, 5xx, time-outs,
            connection errors; the ``openai`` client's bounded exponential back-off).
        timeout: Seconds before one request times out. Default: 60, or 15 minutes for the bundled local
            model (``smollm2-135m-instruct``), which answers from this machine's CPU.
        max_cost_usd: Stop calling the LLM once this much has been spent (priced models only).
        objective_note: What the metric means, in a sentence, for the prompt; default: the note
            ``train_diffusion`` gives a metric of that name (``rfid``), else none.
        response_format: The first of ``RESPONSE_FORMATS`` to ask for; the searcher moves down the
            list when a server refuses one. Default: OpenAI's structured output, or for the bundled
            local model the schema in the form its llama.cpp server reads (``json_object_schema``).
        **kwargs: ``space``, ``metric``, ``mode``, ``constraints``, ``points_to_evaluate``,
            ``warm_start``, ``max_trials``, ``seed`` (see :class:`MemorySearcher`).

    Example:
        >>> from ray import tune
        >>> from ray.tune.schedulers import ASHAScheduler
        >>> from ray_diffnas import UNetSpace, train_diffusion
        >>> space = UNetSpace(image_size=8)
        >>> tune.run(train_diffusion, config=space.param_space(dataset="digits"), metric="rfid",
        ...          mode="min", search_alg=GPT4Searcher(), scheduler=ASHAScheduler(),
        ...          num_samples=8)  # doctest: +SKIP
    """

    supports_several_objectives = True  # the prompt shows the front and asks to extend it

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | EndpointFile | None = None,
        temperature: float = 0.7,
        proposals_per_call: int = 4,
        max_retries: int = 3,
        timeout: float | None = None,
        max_cost_usd: float | None = None,
        objective_note: str | None = None,
        response_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        defaults = _model_defaults(model)
        timeout = defaults["timeout"] if timeout is None else timeout
        response_format = defaults["response_format"] if response_format is None else response_format
        if proposals_per_call < 1:
            raise ConfigError(f"GPT4Searcher: proposals_per_call must be >= 1, but got {proposals_per_call}.")
        if max_retries < 0 or timeout <= 0:
            raise ConfigError("GPT4Searcher: max_retries must be >= 0 and timeout > 0.")
        if response_format not in RESPONSE_FORMATS:
            raise ConfigError(
                f"GPT4Searcher: response_format must be one of {RESPONSE_FORMATS}, not {response_format!r}."
            )
        self.model = model
        self._api_key = api_key
        self.base_url = base_url  # None: $OPENAI_BASE_URL when the client is made (a resumed run may move it)
        self.temperature = temperature
        self.proposals_per_call = proposals_per_call
        self.max_retries = max_retries
        self.timeout = timeout
        self.max_cost_usd = max_cost_usd
        self.objective_note = objective_note
        self._client: Any = None
        self.response_format = response_format
        self._fallback_reason = "no LLM call made yet"
        self.usage = {"calls": 0, "failed_calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
        # What a model trained on the outcomes says of earlier candidates (set by the hybrid searcher before
        # each call; a GPT4Searcher alone has none)
        self.prompt_notes: list[str] = []
        self.calls: list[dict[str, Any]] = []  # one entry per LLM call (the latest CALL_LOG_SIZE)
        super().__init__(**kwargs)

    # --- secrets: never pickled, never saved ----------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        state["_api_key"] = None
        return state

    @property
    def endpoint(self) -> str | None:
        """The LLM server's URL: ``base_url`` (read now, for an :class:`EndpointFile`), else
        ``$OPENAI_BASE_URL``, else None (OpenAI's)."""
        url = self.base_url.url if isinstance(self.base_url, EndpointFile) else self.base_url
        return url or os.environ.get("OPENAI_BASE_URL")

    def _objective_note(self) -> str | None:
        return self.objective_note or METRIC_NOTES.get(str(self._metric))

    def _get_client(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            key = self._api_key or os.environ.get("OPENAI_API_KEY")
            if not key and self.endpoint:
                key = "not-needed"  # local OpenAI-compatible servers take any key
            if not key:
                raise LLMUnavailable(
                    "no API key: set OPENAI_API_KEY (or pass api_key=, or base_url= for a local server)"
                )
            self._client = OpenAI(
                api_key=key, base_url=self.endpoint, max_retries=self.max_retries, timeout=self.timeout
            )
        return self._client

    # --- proposing --------------------------------------------------------------------------

    def _wanted_batch(self) -> int:
        return self.proposals_per_call

    def propose(self, count: int) -> list[Proposal]:
        proposals: list[Proposal] = []
        try:
            proposals = self._ask_llm(count)
        except LLMUnavailable as reason:
            self.usage["failed_calls"] += 1
            logger.warning("GPT4Searcher: the LLM is unavailable (%s); proposing fallbacks.", reason)
            self._fallback_reason = f"LLM unavailable: {reason}"
        else:
            self._fallback_reason = "LLM proposals were invalid or duplicates after one repair round"
        while len(proposals) < count:
            proposals.append(self._fallback(proposals))
        return proposals

    def _fallback(self, taken: Sequence[Proposal]) -> Proposal:
        """A mutation of a good remembered architecture (or a fresh sample when memory is empty)."""
        parents = [r.config["arch"] for r in self._best_feasible(5) if "arch" in r.config]
        arch = self._new_neighbour(parents, {p.arch.key() for p in taken})
        return Proposal(arch, "fallback", note=self._fallback_reason)

    def _ask_llm(self, count: int) -> list[Proposal]:
        if self.max_cost_usd is not None and self.usage["cost_usd"] >= self.max_cost_usd:
            raise LLMUnavailable(f"the cost ceiling of ${self.max_cost_usd:.2f} is reached")
        shown = [m for m in COST_METRICS if any(m in r.last_metrics for r in self.memory.records())]
        messages = build_messages(
            self.space,
            self.objective,
            self.memory,
            count,
            self._budget_text(),
            list(self.live.values()),
            shown,
            getattr(self, "prompt_notes", []),  # a searcher pickled before 2026-12-02 has none
            self.pareto,
        )
        reply = self._chat(messages, count)
        proposals, errors = self._parse(reply, count, "llm")
        self._note_reply(reply, proposals, errors)
        if len(proposals) < count and errors:
            messages = messages + [
                {"role": "assistant", "content": reply},
                repair_message(errors, count - len(proposals)),
            ]
            try:
                reply = self._chat(messages, count - len(proposals))
            except LLMUnavailable as reason:
                logger.warning("GPT4Searcher: the repair call failed (%s).", reason)
                return proposals
            taken = {p.arch.key() for p in proposals}
            repaired, repair_errors = self._parse(reply, count - len(proposals), "repair", taken)
            self._note_reply(reply, repaired, repair_errors)
            proposals += repaired
        return proposals

    def _note_reply(self, reply: str, proposals: Sequence[Proposal], errors: Sequence[str]) -> None:
        """Adds to the last call's log entry what the LLM said and what came of it (for the report)."""
        try:
            answer = json.loads(reply)
        except ValueError:
            answer = None
        reasoning = answer.get("reasoning") if isinstance(answer, dict) else None
        self.calls[-1].update(
            reasoning=str(reasoning)[:REASONING_CHARS] if reasoning else None,
            proposed=[p.arch.key() for p in proposals],
            rejected=len(errors),
        )

    def _budget_text(self) -> str:
        total = "unlimited" if self.max_trials is None else str(self.max_trials)
        return f"{len(self.memory.records(['completed', 'stopped', 'failed']))} trials finished, {total} in all"

    def _chat(self, messages: list[dict[str, str]], count: int) -> str:
        """One completion; walks down the response formats a server does not support."""
        import openai

        client = self._get_client()
        while True:
            start = time.perf_counter()
            try:
                response = client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    temperature=self.temperature,
                    max_tokens=reply_token_limit(count),
                    **self._format_kwargs(count),
                )
                content, tokens = _content_and_tokens(response)
            except MalformedReply as error:
                self._log_call(start, (0, 0), type(error).__name__)
                raise LLMUnavailable(f"{type(error).__name__}: {_short(error)}") from None
            except openai.APIStatusError as error:
                if self.response_format != "text" and "response_format" in str(error).lower():
                    self.response_format = RESPONSE_FORMATS[RESPONSE_FORMATS.index(self.response_format) + 1]
                    logger.info(
                        "GPT4Searcher: the server refused that response format; trying %s.", self.response_format
                    )
                    continue
                self._log_call(start, (0, 0), type(error).__name__)
                raise LLMUnavailable(f"{type(error).__name__}: {_short(error)}") from None
            except (openai.OpenAIError, json.JSONDecodeError, UnicodeDecodeError) as error:  # time-outs, refused
                # connections, and bodies that are not JSON (the client decodes them before we see them)
                self._log_call(start, (0, 0), type(error).__name__)
                raise LLMUnavailable(f"{type(error).__name__}: {_short(error)}") from None
            break
        self._account(tokens)
        # Billed now, whatever comes of the reply: the next trial recorded carries them, so that the memory's
        # token columns and what is set aside add up to the usage at every moment
        self.set_aside(tokens)
        self._log_call(start, tokens, "ok")
        logger.info(
            "GPT4Searcher: %s answered in %.1f s (%d + %d tokens).", self.model, time.perf_counter() - start, *tokens
        )
        return content

    def _format_kwargs(self, count: int) -> dict[str, Any]:
        if self.response_format == "json_schema":
            schema = proposals_schema(self.space, count)
            return {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": f"{self.space.kind}_proposals", "schema": schema, "strict": False},
                }
            }
        if self.response_format == "json_object_schema":
            return {"response_format": {"type": "json_object", "schema": proposals_schema(self.space, count)}}
        if self.response_format == "json_object":
            return {"response_format": {"type": "json_object"}}
        return {}

    def _log_call(self, start: float, tokens: tuple[int, int], outcome: str) -> None:
        self.calls.append(
            {
                "time": time.time(),
                "seconds": round(time.perf_counter() - start, 3),
                "format": self.response_format,
                "prompt_tokens": tokens[0],
                "completion_tokens": tokens[1],
                "outcome": outcome,
            }
        )
        del self.calls[:-CALL_LOG_SIZE]

    def _account(self, tokens: tuple[int, int]) -> None:
        self.usage["calls"] += 1
        self.usage["prompt_tokens"] += tokens[0]
        self.usage["completion_tokens"] += tokens[1]
        price = PRICES_PER_MILLION.get(self.model)
        if price is not None:
            self.usage["cost_usd"] += (tokens[0] * price[0] + tokens[1] * price[1]) / 1e6

    def _parse(
        self, reply: str, count: int, proposer: str, taken: set[str] | None = None
    ) -> tuple[list[Proposal], list[str]]:
        """Valid, new proposals from a reply, and what was wrong with the rest (also recorded in memory)."""
        taken = set(taken or ())
        try:
            items = _proposal_items(reply, self.space.field_names())
        except ValueError as error:
            self.memory.invalid({"raw": reply[:2000]}, f"unparseable reply: {error}", proposer)
            return [], [f"the reply was not the requested JSON ({error})"]
        proposals, errors = [], []
        for item in items[: 2 * count]:
            try:
                missing = sorted(set(self.space.field_names()) - set(item)) if isinstance(item, Mapping) else []
                if missing:
                    raise ConfigError(f"missing fields {missing}; give every field of the schema")
                arch = self.space.validate(item)
            except (ConfigError, TypeError) as error:
                errors.append(f"{json.dumps(item)[:200]}: {error}")
                payload = item if isinstance(item, Mapping) else {"raw": str(item)}
                self.memory.invalid(payload, str(error), proposer)
                continue
            if not self._untried(arch.key(), taken):
                errors.append(f"{arch.key()} was already tried or proposed; propose a different architecture")
                continue
            taken.add(arch.key())
            proposals.append(Proposal(arch, proposer))
        return proposals[:count], errors

    # --- state ------------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), **self.get_llm_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.set_llm_state(state)

    def get_llm_state(self) -> dict[str, Any]:
        """What this searcher keeps of its LLM: model, endpoint (no credentials), usage and the call log."""
        return {
            "model": self.model,
            "base_url": _public_url(self.endpoint),
            "response_format": self.response_format,
            "usage": self.usage,
            "calls": self.calls,
        }

    def set_llm_state(self, state: Mapping[str, Any]) -> None:
        self.model = state.get("model", self.model)
        if not self.endpoint:  # neither given nor in the environment: the saved one
            self.base_url = state.get("base_url")
        self.response_format = state.get("response_format", self.response_format)
        self.usage = dict(state.get("usage", self.usage))
        self.calls = list(state.get("calls", []))


def _model_defaults(model: str) -> dict[str, Any]:
    """The request settings a model gets unless given: an API's, or the bundled local model's."""
    from ray_diffnas.searchers.llm.local_server import MODEL_ALIAS, REQUEST_TIMEOUT, RESPONSE_FORMAT

    if model == MODEL_ALIAS:
        return {"timeout": REQUEST_TIMEOUT, "response_format": RESPONSE_FORMAT}
    return {"timeout": 60.0, "response_format": RESPONSE_FORMATS[0]}


class LLMUnavailable(Exception):
    """The LLM could not answer (after the client's retries); the searcher falls back."""


class MalformedReply(Exception):
    """The server answered, but not with a chat completion (a proxy's error page, a broken server)."""


def _content_and_tokens(response: Any) -> tuple[str, tuple[int, int]]:
    """The reply text and token counts; a body that is not a chat completion raises :class:`MalformedReply`."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list):
        raise MalformedReply(f"the answer is a {type(response).__name__}, not a chat completion")
    usage = getattr(response, "usage", None)
    counts = (getattr(usage, "prompt_tokens", 0), getattr(usage, "completion_tokens", 0))
    tokens = (int(counts[0]) if isinstance(counts[0], int) else 0, int(counts[1]) if isinstance(counts[1], int) else 0)
    message = getattr(choices[0], "message", None) if choices else None
    content = getattr(message, "content", None)
    if content is not None and not isinstance(content, str):
        raise MalformedReply(f"message content is {type(content).__name__}, not text")
    return content or "", tokens


def _public_url(url: str | None) -> str | None:
    """``url`` without user info or query (they can hold credentials): what may be saved."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _short(error: BaseException) -> str:
    return str(error).replace("\n", " ")[:300]


def _proposal_items(reply: str, field_names: Sequence[str]) -> list[Any]:
    """The list of architecture objects in a reply: ``{"proposals": [...]}``, a list, or one object
    (recognised by having a field of the space)."""
    text = reply.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError:
        start = min([i for i in (text.find("{"), text.find("[")) if i >= 0], default=-1)
        if start < 0:
            raise ValueError("no JSON object in the reply") from None
        try:
            data, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError as error:
            raise ValueError(f"invalid JSON: {error}") from None
    if isinstance(data, Mapping) and isinstance(data.get("proposals"), list):
        return list(data["proposals"])
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping) and set(field_names) & set(data):
        return [data]
    raise ValueError('expected {"proposals": [...]}')
