"""The LLM's prompt: the space and the objective as they describe themselves, and a bounded digest of the memory.

DiffNAS treats the LLM as a supernet that reads everything tried so far. The memory can grow to
thousands of records, so the prompt shows a bounded window of it: its size does not depend on the
memory's size. Nothing here knows a particular space: what the architecture is, what its fields
mean and how its keys read comes from the space; what the metric means, from the objective.

**The prompt is laid out for prefix caching.** An LLM server that keeps the previous prompt's
state (llama.cpp, vLLM) evaluates only the tokens after the first one that differs, and OpenAI
bills a repeated prefix at a discount. So everything that only grows comes first and never changes
once written: the space, the objective, then every outcome in the order it finished (a finished
trial's line is final). The window over that log moves in steps of ``LOG_STEP`` lines, not one line
at a time, so the prefix breaks once per step. What changes between calls (the budget, the best so
far, what runs now, the hybrid's notes, the request) is a short tail at the end. With the local
135M model on two CPU cores, prompt evaluation is nearly all of a call's time
(``benchmarks/llm_prompt_cache.py`` measures it).
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np

from ray_diffnas.searchers.memory import ENDED, SearchMemory, TrialRecord
from ray_diffnas.searchers.objective import Objective
from ray_diffnas.searchers.pareto import ParetoObjective
from ray_diffnas.spaces.protocol import SearchSpace

TOP = 5  # best architectures restated in the tail
LOG_LINES, LOG_STEP = 32, 16  # the outcome log shows at most LOG_LINES lines; its start moves LOG_STEP at a time
EARLIER = 32  # keys finished before the log's window, listed so that they are not proposed again
CURVE_POINTS = 8
THIN_SHOWN = 2  # the front's widest gaps named in the prompt
ERROR_CHARS = 160
FINISHED = (*ENDED, "invalid")

SYSTEM = (
    "You are an expert in neural architecture search. You act as a supernet: you propose "
    "architectures from the search space described below, learn from the outcomes of every "
    "architecture tried so far, and answer with JSON only."
)


def proposals_schema(space: SearchSpace, count: int) -> dict[str, Any]:
    """JSON schema of an answer: ``{"proposals": [arch, ...], "reasoning": "..."}``."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["reasoning", "proposals"],
        "properties": {
            "reasoning": {"type": "string", "description": "one or two sentences on what the memory suggests"},
            "proposals": {"type": "array", "items": space.json_schema(), "minItems": 1, "maxItems": count},
        },
    }


def build_messages(
    space: SearchSpace,
    objective: Objective,
    memory: SearchMemory,
    count: int,
    budget: str,
    live_keys: Sequence[str],
    shown_metrics: Sequence[str] = (),
    model_notes: Sequence[str] = (),
    pareto: ParetoObjective | None = None,
) -> list[dict[str, str]]:
    """The chat messages asking for ``count`` new architectures.

    Args:
        space: The space (its ``describe`` and ``json_schema``).
        objective: The metric, its direction, its meaning and the constraints.
        memory: Everything tried so far.
        count: Architectures to ask for.
        budget: The budget in words (e.g. "3 trials finished, 8 in all").
        live_keys: Keys of the architectures running now.
        shown_metrics: Metrics shown beside each outcome besides the objective (cost figures).
        model_notes: What a model trained on the outcomes says of the LLM's earlier candidates (the
            hybrid searcher's screen), one line each.
        pareto: Several objectives at once: the prompt then shows the current Pareto front, where it is
            thin, and asks for architectures that extend it.

    Example:
        >>> from ray_diffnas.spaces.nb201 import NB201Space
        >>> memory = SearchMemory("acc", "max")
        >>> messages = build_messages(NB201Space(), Objective("acc", "max"), memory, 2, "0 of 8", [])
        >>> "NAS-Bench-201" in messages[1]["content"], "UNet" in messages[1]["content"]
        (True, False)
    """
    others = pareto.metrics[1:] if pareto else []  # the memory's curve is the first objective's
    metrics = list(dict.fromkeys([*others, *(c.metric for c in objective.constraints), *shown_metrics]))
    goal = (
        f"Objectives, all at once: {pareto.describe()}. No architecture is best in all of them: the search "
        f"maps their trade-off (the Pareto front)."
        if pareto
        else f"Metric {objective.describe()}."
    )
    request = (
        "Propose {count} new architectures that extend the Pareto front: better in one objective than the front "
        "member next to it without being worse in the others, beyond its ends, or in its thin stretches."
        if pareto
        else "Propose {count} new architectures."
    )
    stable = [  # only grows between calls: a server's prompt cache covers all of it
        "## Search space",
        space.describe(),
        "JSON schema of one architecture:",
        json.dumps(space.json_schema(), separators=(",", ":")),
        "## Objective",
        goal,
        outcome_log(memory, objective, metrics),
    ]
    changing = [  # differs from call to call: kept short, and last
        "## Now",
        f"Budget: {budget}.",
        front_text(memory, pareto) if pareto else _best_so_far(memory, objective),
        *([f"Running now: {', '.join(list(live_keys)[:EARLIER])}"] if live_keys else []),
        *(
            ["## What a model trained on these outcomes says of your earlier candidates", *model_notes]
            if model_notes
            else []
        ),
        "## Task",
        request.format(count=count) + " All different from each other and from every architecture "
        "already tried or running. Balance exploiting what worked with exploring untried regions. "
        f'Answer with one JSON object: {{"reasoning": "...", "proposals": [{count} architecture objects]}}.',
    ]
    content = "\n".join(line for line in (*stable, *changing) if line)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]


def repair_message(errors: list[str], count: int) -> dict[str, str]:
    """The follow-up that sends validation errors back for one repair round."""
    listed = "\n".join(f"- {e}" for e in errors[:10])
    return {
        "role": "user",
        "content": f"Some proposals could not be used:\n{listed}\nReturn {count} corrected, new architectures "
        f'as {{"reasoning": "...", "proposals": [...]}}, following the schema exactly.',
    }


def log_start(finished: int) -> int:
    """Index of the first finished record the log shows: a multiple of ``LOG_STEP``, leaving at most
    ``LOG_LINES`` lines. It moves by whole steps, so the log's first line stays put for ``LOG_STEP``
    outcomes at a time.

    Example:
        >>> LOG_LINES, LOG_STEP
        (32, 16)
        >>> [log_start(n) for n in (0, 32, 33, 48, 49)]
        [0, 0, 16, 16, 32]
    """
    overflow = finished - LOG_LINES
    return 0 if overflow <= 0 else -(-overflow // LOG_STEP) * LOG_STEP


def outcome_log(memory: SearchMemory, objective: Objective, metrics: Sequence[str] = ()) -> str:
    """Every finished proposal in the order it finished (a bounded window), with the keys of those
    before the window: the part of the prompt that a later call repeats word for word."""
    # Finished records never change again; ordering them by when they finished makes the log append-only.
    finished = sorted(memory.records(FINISHED), key=lambda r: r.updated)
    if not finished:
        return "## Outcomes\nNothing has been tried yet: start with a diverse set."
    start = log_start(len(finished))
    lines = [f"## Outcomes, in the order they finished ({objective.metric} at each report)"]
    earlier = [r.arch_key for r in finished[:start] if r.arch_key is not None][-EARLIER:]
    if earlier:
        lines.append(f"Already tried before the outcomes listed below (do not propose again): {', '.join(earlier)}")
    lines += [_line(r, metrics) for r in finished[start:]]
    return "\n".join(lines)


def front_text(memory: SearchMemory, pareto: ParetoObjective) -> str:
    """The current Pareto front (by the first objective, best first) and, with two objectives, its
    thinnest stretches: the widest gaps between neighbouring members, each objective divided by the
    front's range.

    Example:
        >>> memory = SearchMemory("rfid", "min")
        >>> memory.pareto = ParetoObjective(["rfid", "latency_ms"], ["min", "min"])
        >>> for i, (rfid, ms) in enumerate([(2.0, 9.0), (3.0, 8.0), (9.0, 1.0), (5.0, 5.0)]):
        ...     memory.propose(f"t{i}", {}, f"k{i}", "random")
        ...     _ = memory.complete(f"t{i}", {"rfid": rfid, "latency_ms": ms}, "completed")
        >>> print(front_text(memory, memory.pareto))
        Current Pareto front (4 architectures, best 'rfid' first):
        - k0: rfid 2, latency_ms 9
        - k1: rfid 3, latency_ms 8
        - k3: rfid 5, latency_ms 5
        - k2: rfid 9, latency_ms 1
        Thinnest stretches of the front: between k3 and k2; between k1 and k3.
    """
    members = memory.front()
    if not members:
        return "No trial has reported every objective yet."
    points = [memory.front_point(r) for r in members]
    costs = np.array([pareto.costs(p) for p in points])
    order = np.lexsort(costs.T[::-1])
    members, points, costs = [members[i] for i in order], [points[i] for i in order], costs[order]
    lines = [f"Current Pareto front ({len(members)} architectures, best {pareto.metrics[0]!r} first):"]
    for record, point in zip(members, points):
        values = ", ".join(f"{m} {_num(point.get(m))}" for m in pareto.metrics)
        lines.append(f"- {record.arch_key}: {values}")
    if len(pareto.metrics) == 2 and len(members) > 2:
        span = np.ptp(costs, axis=0)
        gaps = np.linalg.norm(np.diff(costs, axis=0) / np.where(span > 0, span, 1.0), axis=1)
        widest = np.argsort(-gaps, kind="stable")[:THIN_SHOWN]
        lines.append(
            "Thinnest stretches of the front: "
            + "; ".join(f"between {members[i].arch_key} and {members[i + 1].arch_key}" for i in widest)
            + "."
        )
    return "\n".join(lines)


def _best_so_far(memory: SearchMemory, objective: Objective) -> str:
    """The best trials that met the constraints: a trial that broke one is no example to follow."""
    best = [r for r in memory.top_k(len(memory)) if objective.feasible(r.last_metrics)][:TOP]
    if not best:
        return ""
    entries = [f"- {r.arch_key}: best {_num(r.best)} ({r.status}, {r.iterations} it)" for r in best]
    which = " of those that met the constraints" if objective.constraints else ""
    return "\n".join([f"Best so far{which} (top {len(best)}):", *entries])


def _line(record: TrialRecord, metrics: Sequence[str]) -> str:
    if record.status == "invalid":
        return f"- invalid proposal {json.dumps(record.config)[:120]}: {(record.error or '')[:ERROR_CHARS]}"
    if record.status == "failed":
        return f"- {record.arch_key} [failed after {record.iterations} it]: {(record.error or '')[:ERROR_CHARS]}"
    # "stopped": the scheduler stopped it at the rung it reached
    state = "completed" if record.status == "completed" else "stopped early by the scheduler"
    curve = [v for v in record.curve if math.isfinite(v)][-CURVE_POINTS:]  # the values it reported
    shown = "".join(f", {m} {_num(record.last_metrics.get(m))}" for m in metrics)
    learning = f"; curve {[round(v, 2) for v in curve]}" if len(curve) > 1 else ""  # one value is the best
    return f"- {record.arch_key} [{state}, {record.iterations} it] best {_num(record.best)}{learning}{shown}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
