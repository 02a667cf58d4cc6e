"""HybridSearcher: the LLM as one more candidate source of the graph searcher, screened before it costs a trial.

DiffNAS trusts the LLM's proposals as they come; DiNAS trusts a model trained on the search's own
outcomes. Here the LLM brings what it knows of good denoisers as *candidates*, and the graph model
(trained on this data set, budget and machine) ranks them together with its own samples and
neighbours: an LLM candidate runs only when the model ranks it among what it would propose itself.
Before the model exists (the warm-up) there is nothing to screen with: the warm-up's proposals are
either uniform draws, as the graph searcher's (``warmup_source="random"``, the default), or the LLM's candidates,
run unscreened (``"llm"``: worth it only with an LLM whose first proposals beat chance).

The LLM is asked for more candidates than a round needs, and asked again only when every earlier one
has been served (run as a trial) or screened out. Its prompt carries what the screen said of its
earlier candidates, so that a capable LLM can correct course. An LLM none of whose candidates the
screen lets run is asked less and less often: it waits 2, 4, 8, then at most ``LLM_WAIT_MAX``
outcomes before the next call, until one of its candidates runs again. A weak LLM (the local 135M
model) then costs a few calls a search instead of one per round, and a capable one is asked as before.

The search memory records who proposed each trial (``llm`` / ``repair`` for the LLM's), and the
searcher's state how many LLM candidates were screened out and why (``llm_screen``), saved with the
memory.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from typing import Any, Mapping, Sequence

from ray_diffnas.errors import ConfigError
from ray_diffnas.searchers.base import Proposal, proposal_from_state, proposal_state
from ray_diffnas.searchers.graph.searcher import GraphDiffusionSearcher
from ray_diffnas.searchers.hybrid_warmup import DEFAULT_HYBRID_WARMUP, HYBRID_WARMUPS, HybridWarmup
from ray_diffnas.searchers.llm.searcher import GPT4Searcher, LLMUnavailable
from ray_diffnas.searchers.memory import SearchMemory, TrialRecord

logger = logging.getLogger(__name__)

LLM_PROPOSERS = ("llm", "repair")  # the memory's names for proposals that came from the LLM
NOTES_SHOWN = 8  # screened-out and served candidates the prompt names, the latest of each
LLM_WAIT_MAX = 16  # outcomes the LLM waits at most between calls while none of its candidates runs


class HybridSearcher(GraphDiffusionSearcher):
    """A :class:`GraphDiffusionSearcher` whose candidates include an LLM's.

    Args:
        space, metric, mode: As in :class:`GraphDiffusionSearcher`.
        llm: The LLM searcher that writes the prompts and talks to the endpoint (its model,
            endpoint, retries, cost ceiling); it proposes from this search's memory.
        llm_candidates: Architectures asked of the LLM at a time (more than a round serves: the
            screen keeps the ones the model ranks well).
        warmup_source: What the warm-up serves, before a model exists to screen with: ``random``
            (uniform draws, the graph searcher's warm-up; the LLM is first asked after it) or ``llm``
            (the LLM's candidates, unscreened; random draws where it has none).
        **graph_options: The rest of :class:`GraphDiffusionSearcher`'s options.

    Example:
        >>> from ray_diffnas.spaces.nb201 import NB201Space
        >>> llm = GPT4Searcher(base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=0.5)
        >>> searcher = HybridSearcher(space=NB201Space(), metric="acc", mode="max", llm=llm, warmup=2, seed=0)
        >>> config = searcher.suggest("t1")  # no LLM listens there: a random draw takes its place
        >>> searcher.memory.get("t1").proposer
        'random'
    """

    supports_several_objectives = True  # the graph model's front and the LLM's prompt both take several

    def __init__(
        self,
        space: Any = None,
        metric: str | Sequence[str] | None = None,
        mode: str | Sequence[str] | None = None,
        *,
        llm: GPT4Searcher,
        llm_candidates: int = 8,
        warmup_source: HybridWarmup = DEFAULT_HYBRID_WARMUP,
        **graph_options: Any,
    ) -> None:
        if not isinstance(llm, GPT4Searcher):
            raise ConfigError(f"HybridSearcher: llm must be a GPT4Searcher, but got {type(llm).__name__}.")
        if not isinstance(llm_candidates, int) or isinstance(llm_candidates, bool) or llm_candidates < 1:
            raise ConfigError(f"HybridSearcher: llm_candidates must be an integer >= 1, but got {llm_candidates!r}.")
        if warmup_source not in HYBRID_WARMUPS:
            raise ConfigError(
                f"HybridSearcher: warmup_source must be one of {list(HYBRID_WARMUPS)}, but got {warmup_source!r}."
            )
        self.llm = llm
        self.llm_candidates = llm_candidates
        self.warmup_source = warmup_source
        self._pool: dict[str, Proposal] = {}  # the LLM's candidates not yet served nor screened out
        # what the screen did with the LLM's candidates: counts, and every one it screened out with the reason
        self.llm_screen: dict[str, Any] = {"received": 0, "infeasible": 0, "poor": 0, "screened_out": []}
        # When the LLM is asked again: not before this many finished trials (after a failure, or a batch
        # of which none ran), the batch not yet judged (None: none), and how many batches in a row none ran.
        self._llm_next_at = 0
        self._llm_batch: list[str] | None = None
        self._llm_idle_batches = 0
        super().__init__(space, metric, mode, **graph_options)

    # --- proposing ------------------------------------------------------------------------------

    def propose(self, count: int) -> list[Proposal]:
        if self.warmup_source == "llm" and self._warming_up(self._finished()):
            # No model to screen with yet: the LLM's prior knowledge takes the random draws' place.
            served = list(self._outside_candidates().values())[:count]
            for proposal in served:
                self._pool.pop(proposal.arch.key(), None)
            note = f"warm-up: {len(self._finished())} outcomes, no model to screen with yet"
            served = [dataclasses.replace(p, note=note) for p in served]
            return served + super().propose(count - len(served)) if len(served) < count else served
        return super().propose(count)

    def _outside_candidates(self) -> dict[str, Proposal]:
        """The pool of LLM candidates, asked for again once every earlier one is served or screened out."""
        self._pool = {key: p for key, p in self._pool.items() if self._is_new(key)}  # served ones are in memory
        if self._pool:
            return dict(self._pool)
        finished = len(self._finished())
        if self._llm_batch is not None:  # every candidate of the last batch is served or screened out
            self._judge_batch(self._llm_batch, finished)
        if finished >= self._llm_next_at:
            answer = self._ask_llm()
            for proposal in answer or []:
                self._pool.setdefault(proposal.arch.key(), proposal)
            self.llm_screen["received"] += len(self._pool)
            self._llm_batch = None if answer is None else list(self._pool)  # a failed call has its own wait
        return dict(self._pool)

    def _judge_batch(self, batch: list[str], finished: int) -> None:
        """Backs off from an LLM none of whose last batch ran (all screened out, already tried or none valid)."""
        self._llm_batch = None
        if {r.arch_key for r in served_by_llm(self.memory)} & set(batch):
            self._llm_idle_batches = 0
            return
        self._llm_idle_batches += 1
        wait = min(2**self._llm_idle_batches, LLM_WAIT_MAX)
        self._llm_next_at = max(self._llm_next_at, finished + wait)
        what = (
            f"none of the LLM's last {len(batch)} candidates ran"
            if batch
            else "the LLM's last batch had no new valid candidate"
        )
        logger.info(
            "HybridSearcher: %s (%d batches in a row); it is asked again after %d more outcomes.",
            what,
            self._llm_idle_batches,
            wait,
        )

    def _screen_outside(
        self, ranked: list[tuple[Any, float]], outside: Mapping[str, Proposal], sampled: set[str]
    ) -> list[tuple[Any, float]]:
        """Drops the LLM candidates predicted to break a constraint (absent from ``ranked``) or to be poor:
        scored below the median of the model's own samples in the same round."""
        kept_keys = {arch.key() for arch, _ in ranked}
        for key in outside:
            if key not in kept_keys:
                self._screen_out(key, "infeasible", "predicted to break a constraint")
        own = [score for arch, score in ranked if arch.key() in sampled and arch.key() not in outside]
        bar = statistics.median(own) if own else None
        kept = []
        for arch, score in ranked:
            key = arch.key()
            if key in outside and bar is not None and score < bar:
                self._screen_out(key, "poor", f"condition score {score:.2f}, below the model's own median {bar:.2f}")
                continue
            kept.append((arch, score))
        return kept

    def _bills_tokens(self, proposal: Proposal) -> bool:
        """The LLM's tokens go to the next trial the LLM proposed (its cost per served trial), not to the
        model's own proposals served in between."""
        return proposal.proposer in LLM_PROPOSERS

    def _screen_out(self, key: str, kind: str, why: str) -> None:
        self._pool.pop(key, None)
        self.llm_screen[kind] += 1
        # all of them, with the reason: a table benchmark judges the screen by the true values of what it rejected
        self.llm_screen["screened_out"].append({"key": key, "kind": kind, "why": why})

    def _ask_llm(self) -> list[Proposal] | None:
        """New candidates from the LLM, prompted with this search's memory and what the screen said; None
        when the LLM is unavailable."""
        llm = self.llm
        # The LLM proposes from this search's state: its space, objective, memory and running trials.
        llm.space, llm._metric, llm._mode, llm._objectives = self._space, self._metric, self._mode, self._objectives
        llm.constraints, llm.memory, llm.live, llm.max_trials = (
            self.constraints,
            self.memory,
            self.live,
            self.max_trials,
        )
        llm.prompt_notes = self._prompt_notes()
        try:
            return llm._ask_llm(self.llm_candidates)
        except LLMUnavailable as reason:
            llm.usage["failed_calls"] += 1
            self._llm_next_at = len(self._finished()) + 1  # not asked again until another trial finishes
            logger.warning("HybridSearcher: the LLM is unavailable (%s); the graph model proposes alone.", reason)
            return None
        finally:
            self.set_aside(llm.billed((0, 0)))  # the LLM's calls, billed as they answered: the next record's

    def _prompt_notes(self) -> list[str]:
        """What the model said of the LLM's earlier candidates: which it screened out, and which ran."""
        notes = [
            f"- screened out, not run: {item['key']} ({item['why']})"
            for item in self.llm_screen["screened_out"][-NOTES_SHOWN:]
        ]
        ran = served_by_llm(self.memory)
        notes += [
            f"- ran: {r.arch_key} [{r.status}] best {'-' if r.best is None else f'{r.best:.4g}'}"
            for r in ran[-NOTES_SHOWN:]
        ]
        return notes

    def llm_summary(self) -> dict[str, Any]:
        """The LLM's share of the search: candidates received, served and screened out, and tokens per served trial."""
        served = served_by_llm(self.memory)
        tokens = self.llm.usage["prompt_tokens"] + self.llm.usage["completion_tokens"]
        return {
            "received": self.llm_screen["received"],
            "served": len(served),
            "screened_out": {"infeasible": self.llm_screen["infeasible"], "poor": self.llm_screen["poor"]},
            "calls": self.llm.usage["calls"],
            "tokens_per_served_trial": tokens / len(served) if served else None,
            "cost_usd_per_served_trial": self.llm.usage["cost_usd"] / len(served) if served else None,
        }

    # --- state ----------------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        return {
            **super().get_state(),
            "llm": self.llm.get_llm_state(),
            "llm_pool": [proposal_state(p) for p in self._pool.values()],
            "llm_screen": self.llm_screen,
            "llm_wait": {
                "next_at": self._llm_next_at,
                "batch": self._llm_batch,
                "idle_batches": self._llm_idle_batches,
            },
        }

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.llm.set_llm_state(state.get("llm") or {})
        pool = [proposal_from_state(item, self.space) for item in state.get("llm_pool") or []]
        self._pool = {p.arch.key(): p for p in pool}
        saved = state.get("llm_screen") or {}
        self.llm_screen = {**self.llm_screen, **saved, "screened_out": list(saved.get("screened_out") or [])}
        wait = state.get("llm_wait") or {}
        self._llm_next_at = int(wait.get("next_at", 0))
        self._llm_batch = None if wait.get("batch") is None else list(wait["batch"])
        self._llm_idle_batches = int(wait.get("idle_batches", 0))


def served_by_llm(memory: SearchMemory) -> list[TrialRecord]:
    """The trials the LLM proposed that ran (its invalid proposals are recorded too, without a key)."""
    return [r for r in memory.records() if r.proposer in LLM_PROPOSERS and r.arch_key is not None]
