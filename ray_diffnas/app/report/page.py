"""``report.html``: one self-contained page about a search (images inlined, no script or font from
elsewhere), that opens offline, reads on a laptop screen and prints.

Sections: what ran, the leaderboard (sortable), RFID curves with ASHA's rungs, RFID against latency
and parameters with the Pareto front, samples of the best few models, the best UNet drawn level by
level, and the searcher: who proposed what, and for the LLM searcher each call and its cost.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ray_diffnas.app.report import figures
from ray_diffnas.app.report.folder import SearchFolder
from ray_diffnas.app.results import (
    FEASIBLE_COLUMN,
    INTEGER_COLUMNS,
    best_first,
    best_trial,
    meets_no_constraint,
    yes_no,
)
from ray_diffnas.atomic import atomic_write
from ray_diffnas.searchers.factory import LLM_SEARCHERS
from ray_diffnas.searchers.hybrid import served_by_llm
from ray_diffnas.searchers.memory import RANK_COLUMN
from ray_diffnas.searchers.pareto import ParetoObjective
from ray_diffnas.spaces.unet_arch import UNetArch
from ray_diffnas.trainable.asha import asha_rungs

logger = logging.getLogger(__name__)

REPORT_FILE = "report.html"
SAMPLED_MODELS = 3  # the best few models whose samples the report shows
SAMPLES_PER_MODEL = 25
# The leaderboard's columns and their headings.
COLUMNS = {
    "trial_id": "trial",
    "proposer": "proposed by",
    "status": "status",
    "best_rfid": "best RFID",
    RANK_COLUMN: "Pareto rank",
    FEASIBLE_COLUMN: "meets constraints",
    "training_iteration": "iterations",
    "latency_ms": "latency ms",
    "params_m": "params M",
    "gflops": "GFLOPs",
    "wall_seconds": "wall s",
    "cpu_seconds": "CPU s",
    "images_seen": "images",
    "arch_key": "architecture",
}


@dataclass(frozen=True)
class Section:
    title: str
    body: str  # HTML


def write_report(folder: SearchFolder, samples: int = SAMPLED_MODELS) -> Path:
    """Writes ``report.html`` into the search folder; returns its path. ``samples``: how many of the best
    models to draw samples from (0 for none: no model is loaded)."""
    trials = best_first(folder.trials)
    sections = [
        _overview(folder, trials),
        _leaderboard(trials),
        _figures(folder, trials),
        _samples(trials, folder, samples),
        _best_unet(trials, folder),
        _searcher(folder, trials),
    ]
    page = _page(f"Search report: {folder.path.name}", [s for s in sections if s is not None])
    return atomic_write(folder.path / REPORT_FILE, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))


# --- sections --------------------------------------------------------------------------------------


def _overview(folder: SearchFolder, trials: pd.DataFrame) -> Section:
    options = folder.options
    counts = trials["status"].value_counts().to_dict() if len(trials) else {}
    facts = {
        "folder": str(folder.path),
        "state": folder.state,
        "searcher": options.searcher + (f" ({options.llm} LLM)" if options.searcher in LLM_SEARCHERS else ""),
        "data": f"{options.dataset} at {_image_size(trials) or options.image_size or 'its own size in'} px",
        "trials": f"{len(trials)} of {options.num_samples}: "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
        "trial budget": f"{options.max_iterations} x {options.steps_per_iteration} steps, batch {options.batch_size}",
        "scheduler": options.scheduler
        + (
            f" (grace period {options.grace_period}, reduction factor {options.reduction_factor:g})"
            if options.scheduler == "asha"
            else ""
        ),
        "seed": str(options.seed),
    }
    if options.constraints:
        facts["constraints"] = ", ".join(options.constraints)
    best = best_trial(trials)
    if best is not None:
        facts["best"] = f"{best['arch_key']}: RFID {best['best_rfid']:.3f} (trial {best['trial_id']})"
        if meets_no_constraint(trials):
            facts["best"] += "; no trial met the constraints"
    summary = folder.summary or {}
    if isinstance(summary.get("wall_seconds"), (int, float)):
        facts["wall time"] = f"{summary['wall_seconds']:.0f} s"
    if isinstance(summary.get("untrained_rfid"), (int, float)):
        facts["untrained RFID of the best"] = f"{summary['untrained_rfid']:.3f} (the same architecture, not trained)"
    if summary.get("rfid_features"):
        facts["RFID features"] = str(summary["rfid_features"])
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts.items())
    return Section("The search", f'<table class="facts">{rows}</table>')


def _leaderboard(trials: pd.DataFrame) -> Section:
    optional = (RANK_COLUMN, FEASIBLE_COLUMN)  # several objectives; constraints
    columns = {c: h for c, h in COLUMNS.items() if c not in optional or c in trials}
    head = "<th>rank</th>" + "".join(f"<th>{html.escape(h)}</th>" for h in columns.values())
    rows = []
    for rank, (_, trial) in enumerate(trials.iterrows(), start=1):
        cells = [f"<td>{rank}</td>"] + [_cell(trial.get(c), c) for c in columns]
        rows.append(f'<tr class="{html.escape(str(trial["status"]))}">{"".join(cells)}</tr>')
    several = RANK_COLUMN in trials
    order = "The Pareto front first (Pareto rank 0), then the layers behind it, each" if several else "Best RFID first"
    order += " by best RFID" if several else ""
    if FEASIBLE_COLUMN in trials:
        order = f"The trials that meet the constraints first; then: {order[0].lower()}{order[1:]}"
    body = (
        f'<p class="note">{order} (lower is better). Click a heading to sort by it.</p>'
        f'<table id="leaderboard" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return Section("Leaderboard", body)


def _figures(folder: SearchFolder, trials: pd.DataFrame) -> Section:
    options = folder.options
    asha = options.scheduler == "asha"
    rungs = asha_rungs(options.max_iterations, options.reduction_factor, options.grace_period) if asha else []
    body = _image(figures.curves_figure(trials, rungs), "RFID of every trial after each iteration")
    target = options.target()
    searched = target.metrics[1:] if isinstance(target, ParetoObjective) else []  # the costs the search traded
    costs = list(dict.fromkeys([*searched, *figures.COSTS_SHOWN]))[: max(len(searched), len(figures.COSTS_SHOWN))]
    body += _image(figures.cost_figure(trials, costs), "Best RFID against " + " and against ".join(costs))
    return Section("RFID over training, and against cost", body)


def _samples(trials: pd.DataFrame, folder: SearchFolder, count: int) -> Section | None:
    """Samples of the best few models with a checkpoint: EMA weights, DDIM with the steps and seed of the
    RFID evaluation (what the RFID beside them judged, and cheap at the end of a search)."""
    if count <= 0:
        return None
    from ray_diffnas.errors import DiffNASError
    from ray_diffnas.trainable.trial import EVAL_SEED, load_checkpoint

    images = []
    for _, trial in trials.dropna(subset=["best_rfid"]).head(count).iterrows():
        path = trial.get("checkpoint")
        if not isinstance(path, str) or not Path(path).is_dir():
            continue
        try:
            trainer = load_checkpoint(path)
        except (DiffNASError, OSError) as error:
            logger.warning("No samples of trial %s: %s", trial["trial_id"], error)
            continue
        drawn = trainer.sample(SAMPLES_PER_MODEL, steps=trainer.settings.sampler_steps, seed=EVAL_SEED)
        title = f"{trial['arch_key']}\nRFID {trial['best_rfid']:.2f}"
        images.append(_image(figures.samples_figure(drawn, title), f"samples of {trial['arch_key']}", "sample"))
    if not images:
        return Section("Samples of the best models", '<p class="note">No trial has a checkpoint to sample from.</p>')
    return Section("Samples of the best models", f'<div class="samples">{"".join(images)}</div>')


def _image_size(trials: pd.DataFrame) -> int | None:
    """The image size the trials trained at (every search trial's config names it)."""
    if "train.image_size" not in trials:
        return None
    sizes = trials["train.image_size"].dropna()
    return int(sizes.iloc[0]) if len(sizes) else None


def _best_unet(trials: pd.DataFrame, folder: SearchFolder) -> Section | None:
    scored = trials.dropna(subset=["best_rfid"])
    if scored.empty:
        return None
    best = scored.iloc[0]
    image_size = _image_size(scored)
    if image_size is None:
        return Section("The best UNet", '<p class="note">The results do not say the image size it trained at.</p>')
    arch = UNetArch.from_dict(json.loads(best["arch"]), image_size)
    return Section("The best UNet", _image(figures.unet_figure(arch, image_size), f"the UNet {arch.key()}"))


def _searcher(folder: SearchFolder, trials: pd.DataFrame) -> Section:
    parts = [_proposers(trials)]
    llm_state = folder.searcher_state.get("llm") or folder.searcher_state  # the hybrid keeps its LLM's apart
    calls = llm_state.get("calls") or []
    if calls or llm_state.get("usage"):
        parts.append(_llm_calls(llm_state, calls))
    screen = folder.searcher_state.get("llm_screen")
    if screen:
        served = len(served_by_llm(folder.memory)) if folder.memory else 0
        parts.append(_llm_screen(screen, llm_state.get("usage") or {}, served))
    if folder.memory is not None:
        invalid = [r for r in folder.memory.records() if r.status == "invalid"]
        if invalid:
            rows = "".join(
                f"<tr><td>{html.escape(r.proposer)}</td><td>{html.escape(str(r.error or ''))[:300]}</td></tr>"
                for r in invalid
            )
            parts.append(
                f"<h3>Proposals rejected before they ran ({len(invalid)})</h3>"
                f"<table><thead><tr><th>from</th><th>why</th></tr></thead><tbody>{rows}</tbody></table>"
            )
    return Section("Who proposed what", "".join(parts))


SCREENED_SHOWN = 20  # the latest LLM candidates the hybrid's screen rejected, in the report


def _llm_screen(screen: dict[str, Any], usage: dict[str, Any], served: int) -> str:
    """The hybrid's screen: how many LLM candidates it kept from running, and the latest with the reason; what
    each LLM candidate that ran cost."""
    rows = "".join(
        f"<tr><td>{html.escape(str(item.get('key')))}</td><td>{html.escape(str(item.get('why')))}</td></tr>"
        for item in (screen.get("screened_out") or [])[-SCREENED_SHOWN:]
    )
    return (
        f"<h3>LLM candidates screened by the graph model</h3><p>{screen.get('received', 0)} received; screened out "
        f"before running: {screen.get('infeasible', 0)} predicted to break a constraint, {screen.get('poor', 0)} "
        f"predicted poor; {served} ran"
        + (
            f", at {(usage.get('prompt_tokens', 0) + usage.get('completion_tokens', 0)) / served:,.0f} tokens "
            f"(${usage.get('cost_usd', 0.0) / served:.4f}) each"
            if served
            else ""
        )
        + ". The latest screened out:</p>"
        f"<table><thead><tr><th>candidate</th><th>why</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _proposers(trials: pd.DataFrame) -> str:
    if "proposer" not in trials or trials.empty:
        return ""
    frame = trials.assign(proposer=trials["proposer"].fillna("random"))
    rows = []
    for name, group in frame.groupby("proposer", sort=False):
        best = group["best_rfid"].min()
        rows.append(
            f"<tr><td>{html.escape(str(name))}</td><td>{len(group)}</td>"
            f"<td>{(group['status'] == 'completed').sum()}</td><td>{_format(best, 'best_rfid')}</td></tr>"
        )
    return (
        "<table><thead><tr><th>proposer</th><th>trials</th><th>ran in full</th><th>best RFID</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _llm_calls(state: dict[str, Any], calls: list[dict[str, Any]]) -> str:
    import time

    usage = state.get("usage") or {}
    summary = (
        f"<p>{usage.get('calls', len(calls))} call(s) to {html.escape(str(state.get('model')))}, "
        f"{usage.get('failed_calls', 0)} failed; {usage.get('prompt_tokens', 0):,} prompt and "
        f"{usage.get('completion_tokens', 0):,} completion tokens; cost ${usage.get('cost_usd', 0.0):.4f}.</p>"
    )
    rows = "".join(
        "<tr>"
        f"<td>{time.strftime('%H:%M:%S', time.localtime(call.get('time', 0)))}</td>"
        f"<td>{call.get('seconds', math.nan):.1f}</td><td>{call.get('prompt_tokens', 0)}</td>"
        f"<td>{call.get('completion_tokens', 0)}</td><td>{html.escape(str(call.get('outcome', '')))}</td>"
        f"<td>{html.escape(', '.join(call.get('proposed') or []))}"
        f"{_rejected(call.get('rejected'))}</td>"
        f"<td>{html.escape(str(call.get('reasoning') or ''))}</td>"
        "</tr>"
        for call in calls
    )
    return (
        f"<h3>LLM calls</h3>{summary}<table><thead><tr><th>at</th><th>seconds</th><th>prompt tokens</th>"
        f"<th>completion tokens</th><th>outcome</th><th>proposed</th><th>reasoning</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _rejected(count: Any) -> str:
    return f" <em>({count} rejected)</em>" if isinstance(count, int) and count else ""


# --- HTML ------------------------------------------------------------------------------------------


def _cell(value: Any, column: str) -> str:
    text = _format(value, column)
    sort: Any = text  # words sort as words; a number by its value, a flag as 1 / 0; missing ("") last
    if _missing(value):
        sort = ""
    elif yes_no(value) is not None:
        sort = int(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        sort = value
    key = ' class="key"' if column == "arch_key" else ""  # a key reads as one token: never broken at its hyphens
    return f'<td{key} data-sort="{html.escape(str(sort))}">{html.escape(text)}</td>'


def _format(value: Any, column: str) -> str:
    if _missing(value):
        return "-"
    if (flag := yes_no(value)) is not None:
        return flag
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
        return f"{value:,.0f}" if column in INTEGER_COLUMNS else f"{value:.3f}"
    return f"{value:,}" if isinstance(value, numbers.Integral) and column in INTEGER_COLUMNS else str(value)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, numbers.Real) and math.isnan(value))


def _image(data: bytes, alt: str, css_class: str = "figure") -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img class="{css_class}" alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _page(title: str, sections: list[Section]) -> str:
    body = "".join(f"<section><h2>{html.escape(s.title)}</h2>{s.body}</section>" for s in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}<script>{SORT_SCRIPT}</script></body></html>"
    )


STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 1100px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 1.6em; }
h3 { font-size: 1em; }
table { border-collapse: collapse; font-size: 12.5px; margin: 0.5em 0; }
td.key { white-space: nowrap; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e5e5e5; text-align: left; }
table.sortable th { cursor: pointer; background: #f4f4f4; white-space: nowrap; }
table.sortable td { font-variant-numeric: tabular-nums; }
table.facts th { background: none; font-weight: 600; width: 14em; }
tr.failed td { color: #a00; } tr.stopped td { color: #666; } tr.unfinished td { color: #666; font-style: italic; }
img.figure { max-width: 100%; display: block; margin: 0.6em 0; }
.samples { display: flex; flex-wrap: wrap; gap: 1em; } img.sample { width: 300px; }
.note { color: #555; font-size: 12.5px; }
@media print {
  body { max-width: none; margin: 0; font-size: 11px; } table { font-size: 9.5px; }
  section { break-inside: avoid-page; } img.figure { max-width: 100%; break-inside: avoid; }
}
"""

# Sorts the leaderboard by a clicked heading (numbers by value, missing last; a second click reverses).
SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0];
      var ascending = th.dataset.order !== "asc";
      th.dataset.order = ascending ? "asc" : "desc";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column], y = b.cells[column];
        var u = x.dataset.sort !== undefined ? x.dataset.sort : x.textContent;
        var v = y.dataset.sort !== undefined ? y.dataset.sort : y.textContent;
        if (u === "" || v === "") { return u === v ? 0 : (u === "" ? 1 : -1); }
        var p = Number(u), q = Number(v);  // strict: a trial id such as "4be3" is a word, not 4
        var order = (!isNaN(p) && !isNaN(q)) ? p - q : String(u).localeCompare(String(v));
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""
