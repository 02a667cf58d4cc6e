"""The LLM prompt's layout for prefix caching: what a later call repeats comes first, word for word."""

from __future__ import annotations

from ray_diffnas.searchers.llm.prompt import LOG_LINES, LOG_STEP, build_messages, log_start
from ray_diffnas.searchers.memory import SearchMemory
from ray_diffnas.searchers.objective import Objective
from ray_diffnas.spaces.nb201 import OPERATIONS, NB201Space

SPACE = NB201Space()
OBJECTIVE = Objective("acc", "max")


def _finish(memory: SearchMemory, index: int) -> str:
    ops = [OPERATIONS[(index // 5**i) % 5] for i in range(6)]
    arch = SPACE.validate({"ops": ops})
    memory.propose(f"t{index}", {"arch": arch.to_dict()}, arch.key(), "llm")
    memory.complete(f"t{index}", {"acc": 80.0 + index % 7, "training_iteration": 1}, status="completed")
    return arch.key()


def _stable_part(memory: SearchMemory, live: list[str]) -> str:
    content = build_messages(SPACE, OBJECTIVE, memory, 4, f"{len(memory)} finished", live)[1]["content"]
    return content[: content.index("## Now")]


def test_each_prompt_extends_the_last_until_the_window_steps() -> None:
    memory = SearchMemory("acc", "max")
    previous = _stable_part(memory, [])
    breaks = []
    for index in range(3 * LOG_LINES):
        _finish(memory, index)
        # what runs now, the budget and the best so far change every call: they must not break the prefix
        current = _stable_part(memory, [f"live{index}"])
        if not current.startswith(previous):
            breaks.append(len(memory))
        previous = current
    # the first outcome replaces "Nothing has been tried", then only the window's steps break the prefix
    assert breaks == [1, *range(LOG_LINES + 1, 3 * LOG_LINES + 1, LOG_STEP)]


def test_outcomes_before_the_window_are_still_named_so_they_are_not_proposed_again() -> None:
    memory = SearchMemory("acc", "max")
    keys = [_finish(memory, index) for index in range(LOG_LINES + 1)]
    assert log_start(len(keys)) == LOG_STEP
    stable = _stable_part(memory, [])
    listed = stable[stable.index("Already tried before") :].split("\n")
    assert all(key in listed[0] for key in keys[:LOG_STEP])  # named on one line
    assert sum(line.startswith("- ") for line in listed) == LOG_LINES + 1 - LOG_STEP  # the rest, in full


def test_the_tail_restates_the_best_and_what_runs_now() -> None:
    memory = SearchMemory("acc", "max")
    keys = [_finish(memory, index) for index in range(10)]
    content = build_messages(SPACE, OBJECTIVE, memory, 4, "10 finished", ["running-key"])[1]["content"]
    tail = content[content.index("## Now") :]
    best = max(range(10), key=lambda i: (80.0 + i % 7, -i))
    assert f"- {keys[best]}: best 86" in tail and "Running now: running-key" in tail
    assert tail.rstrip().endswith("architecture objects]}.")


def test_a_curve_shows_the_values_reported_not_the_missing_ones() -> None:
    """The memory keeps a missing value's place in the curve (NaN); the LLM is shown what was reported."""
    memory = SearchMemory("acc", "max")
    arch = SPACE.validate({"ops": list(OPERATIONS[:1]) * 6})
    memory.propose("t", {"arch": arch.to_dict()}, arch.key(), "llm")
    for it, value in [(1, 70.0), (2, float("nan")), (3, 75.0)]:
        memory.report("t", {"acc": value, "training_iteration": it})
    memory.complete("t", None, status="completed")
    content = build_messages(SPACE, OBJECTIVE, memory, 4, "1 finished", [])[1]["content"]
    assert "curve [70.0, 75.0]" in content and "nan" not in content.lower()
