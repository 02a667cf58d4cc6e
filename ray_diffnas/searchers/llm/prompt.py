"""The LLM's prompt: the space and the objective as they describe themselves, and a bounded digest of the memory.

DiffNAS treats the LLM as a supernet that reads everything tried so far. The memory can grow to
thousands of records, so each section shows a fixed number of entries (the best, the most recent,
failures, early stops) and the "already tried" list is capped: the prompt's size has a bound that
does not depend on the memory's size. Nothing here knows a particular space: what the architecture
is, what its fields mean and how its keys read comes from the space; what the metric means, from
the objective.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from ray_diffnas.searchers.memory import SearchMemory, TrialRecord
from ray_diffnas.searchers.objective import Objective
from ray_diffnas.spaces.protocol import SearchSpace

TOP, RECENT, FAILURES, PRUNED, TRIED = 8, 10, 6, 8, 60
CURVE_POINTS = 8
ERROR_CHARS = 160

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

    Example:
        >>> from ray_diffnas.spaces.nb201 import NB201Space
        >>> memory = SearchMemory("acc", "max")
        >>> messages = build_messages(NB201Space(), Objective("acc", "max"), memory, 2, "0 of 8", [])
        >>> "NAS-Bench-201" in messages[1]["content"], "UNet" in messages[1]["content"]
        (True, False)
    """
    metrics = list(dict.fromkeys([*(c.metric for c in objective.constraints), *shown_metrics]))
    sections = [
        "## Search space",
        space.describe(),
        "JSON schema of one architecture:",
        json.dumps(space.json_schema(), separators=(",", ":")),
        "## Objective",
        f"Metric {objective.describe()}. Budget: {budget}.",
        _digest(memory, objective, live_keys, metrics),
        *(
            ["## What a model trained on these outcomes says of your earlier candidates", *model_notes]
            if model_notes
            else []
        ),
        "## Task",
        f"Propose {count} new architectures, all different from each other and from every architecture "
        f"already tried or running. Balance exploiting what worked with exploring untried regions. "
        f'Answer with one JSON object: {{"reasoning": "...", "proposals": [{count} architecture objects]}}.',
    ]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(sections)}]


def repair_message(errors: list[str], count: int) -> dict[str, str]:
    """The follow-up that sends validation errors back for one repair round."""
    listed = "\n".join(f"- {e}" for e in errors[:10])
    return {
        "role": "user",
        "content": f"Some proposals could not be used:\n{listed}\nReturn {count} corrected, new architectures "
        f'as {{"reasoning": "...", "proposals": [...]}}, following the schema exactly.',
    }


def _digest(memory: SearchMemory, objective: Objective, live_keys: Sequence[str], metrics: list[str]) -> str:
    records = memory.records()
    if not records:
        return "## Memory\nNothing has been tried yet: start with a diverse set."
    lines = [f"## Memory ({len(records)} proposals so far)"]
    best = memory.top_k(TOP)
    lines.append(f"Best so far (top {len(best)}):")
    lines += [_line(r, metrics) for r in best]
    finished = [r for r in records if r.status in ("completed", "stopped")]
    recent = finished[-RECENT:]
    if recent:
        lines.append(f"Most recent outcomes ({objective.metric} at each report):")
        lines += [_line(r, metrics) for r in recent]
    pruned = [r for r in records if r.status == "stopped"][-PRUNED:]
    if pruned:
        lines.append("Stopped early by the scheduler (rung = iterations reached):")
        lines += [
            f"- {r.arch_key}: stopped at rung {r.iterations}, last {objective.metric} {_num(r.last())}" for r in pruned
        ]
    failures = [r for r in records if r.status in ("failed", "invalid")][-FAILURES:]
    if failures:
        lines.append("Failures and invalid proposals (avoid repeating them):")
        lines += [f"- {r.arch_key or json.dumps(r.config)[:120]}: {(r.error or '')[:ERROR_CHARS]}" for r in failures]
    if live_keys:
        lines.append("Running now: " + ", ".join(list(live_keys)[:TRIED]))
    # The most recent keys: the LLM's own latest ideas are the ones it is likeliest to repeat.
    tried = [r.arch_key for r in records if r.arch_key is not None][-TRIED:]
    total = len(memory.keys())
    more = f" (the latest {TRIED} of {total})" if total > TRIED else ""
    lines.append(f"Already tried (do not propose again){more}: {', '.join(tried)}")
    return "\n".join(lines)


def _line(record: TrialRecord, metrics: list[str]) -> str:
    curve = record.curve[-CURVE_POINTS:]
    shown = "".join(f", {m} {_num(record.last_metrics.get(m))}" for m in metrics)
    return (
        f"- {record.arch_key} [{record.status}, {record.iterations} it] best {_num(record.best)}; "
        f"curve {[round(v, 2) for v in curve]}" + shown
    )


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
