"""The LLM's prompt: the space, the objective and budget, and a bounded digest of the memory.

DiffNAS treats the LLM as a supernet that reads everything tried so far. The memory can grow to
thousands of records, so each section shows a fixed number of entries (the best, the most recent,
failures, early stops) and the "already tried" list is capped: the prompt's size has a bound that
does not depend on the memory's size.
"""

from __future__ import annotations

import json
from typing import Any

from ray_diffnas.memory import SearchMemory, TrialRecord
from ray_diffnas.space import UNetSpace

TOP, RECENT, FAILURES, PRUNED, TRIED = 8, 10, 6, 8, 60
CURVE_POINTS = 8
ERROR_CHARS = 160

SYSTEM = (
    "You are an expert in diffusion models and neural architecture search. You act as a supernet: "
    "you propose UNet denoiser architectures for an image diffusion model, learn from the outcomes "
    "of every architecture tried so far, and answer with JSON only."
)


def proposals_schema(space: UNetSpace, count: int) -> dict[str, Any]:
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


def build_messages(space: UNetSpace, memory: SearchMemory, count: int, budget: str, live_keys: list[str]) -> list[dict[str, str]]:
    """The chat messages asking for ``count`` new architectures."""
    direction = "lower" if memory.mode == "min" else "higher"
    sections = [
        "## Search space",
        space.describe(),
        "JSON schema of one architecture:",
        json.dumps(space.json_schema(), separators=(",", ":")),
        "## Objective",
        f"Metric '{memory.metric}' ({direction} is better): an FID of a few generated images after short "
        f"training (RFID). Trials report it once per iteration; a scheduler (ASHA) stops weak trials early, "
        f"so a trial stopped at an early iteration was judged on a noisy, partly trained model. "
        f"Cost matters too: latency_ms and params_m are reported. Budget: {budget}.",
        _digest(memory, live_keys),
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


def _digest(memory: SearchMemory, live_keys: list[str]) -> str:
    records = memory.records()
    if not records:
        return "## Memory\nNothing has been tried yet: start with a diverse set."
    lines = [f"## Memory ({len(records)} proposals so far)"]
    best = memory.top_k(TOP)
    lines.append(f"Best so far (top {len(best)}):")
    lines += [_line(r, memory) for r in best]
    finished = [r for r in records if r.status in ("completed", "stopped")]
    recent = finished[-RECENT:]
    if recent:
        lines.append(f"Most recent outcomes ({memory.metric} at each report):")
        lines += [_line(r, memory) for r in recent]
    pruned = [r for r in records if r.status == "stopped"][-PRUNED:]
    if pruned:
        lines.append("Stopped early by the scheduler (rung = iterations reached):")
        lines += [f"- {r.arch_key}: stopped at rung {r.iterations}, last {memory.metric} {_num(r.last())}" for r in pruned]
    failures = [r for r in records if r.status in ("failed", "invalid")][-FAILURES:]
    if failures:
        lines.append("Failures and invalid proposals (avoid repeating them):")
        lines += [f"- {r.arch_key or json.dumps(r.config)[:120]}: {(r.error or '')[:ERROR_CHARS]}" for r in failures]
    if live_keys:
        lines.append("Running now: " + ", ".join(live_keys[:TRIED]))
    # The most recent keys: the LLM's own latest ideas are the ones it is likeliest to repeat.
    tried = [r.arch_key for r in records if r.arch_key is not None][-TRIED:]
    shown = ", ".join(tried)
    total = len(memory.keys())
    more = f" (the latest {TRIED} of {total})" if total > TRIED else ""
    lines.append(f"Already tried (do not propose again; keys read c=base_channels, m=channel_mult, r=num_res_blocks, "
                 f"a=attention_resolutions, h=num_heads, d=dropout, mid=mid_attention){more}: {shown}")
    return "\n".join(lines)


def _line(record: TrialRecord, memory: SearchMemory) -> str:
    curve = record.curve[-CURVE_POINTS:]
    metrics = record.last_metrics
    return (
        f"- {record.arch_key} [{record.status}, {record.iterations} it] best {_num(record.best)}; "
        f"curve {[round(v, 2) for v in curve]}; latency_ms {_num(metrics.get('latency_ms'))}, "
        f"params_m {_num(metrics.get('params_m'))}"
    )


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
