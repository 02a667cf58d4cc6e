"""Kill it anywhere, resume it always: SIGKILL ``ray-diffnas search`` (the driver and the Ray it
started) at random moments over a search's whole life, resume it with ``--resume`` each time, and
check what the search leaves behind.

A *life* is one search, from ``ray-diffnas search`` to the run that finishes it. Each attempt (the
start or a resume) is killed at a moment drawn from the life's random generator:

- ``time``: U(0, horizon) seconds after the attempt started (before Tune's first save, while trials
  run, while a searcher thinks: wherever the clock falls);
- ``resume``: U(0, 15) s into a resume (Ray starting, Tune restoring): the second kill in a row;
- ``state-write``: a temporary file of a searcher or experiment state appears in the driver's folder;
- ``upload``: a state file in ``--output`` changes (Tune copying its driver folder to storage);
- ``searcher``: the graph model starts training (its log line), or a request reaches the LLM server
  (which then answers slowly, so the kill lands while the searcher waits for it).

After every kill: each JSON, Parquet and result file in ``--output`` parses, and no trial's iteration
count is lower than at an earlier look. After the run that finishes a life: exactly ``--num-samples``
trials in ``results.parquet``, no architecture twice, the memory file loads and agrees with
``results.parquet`` (same trials, architectures, statuses and iterations, nothing left running), and
the options file is unchanged. A kill *met every check* when every check after it in its life passed.

Lives are cached one JSON file each under ``--work-dir``; a rerun skips the finished ones (and starts an
unfinished one again), so the table survives the script being stopped mid-way.

    python -m benchmarks.kill_anywhere [--searchers random graph gpt4] [--kills 30] [--seed 0]
        [--work-dir /tmp/ray_diffnas_kill_anywhere] [--output benchmarks/results/kill_anywhere.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from llm_server import FakeLLMServer, Reply  # noqa: E402

from benchmarks.report import report  # noqa: E402
from ray_diffnas.app.options import OPTIONS_FILE
from ray_diffnas.app.run import TUNE_FOLDER  # noqa: E402
from ray_diffnas.searchers.base import MEMORY_FILE  # noqa: E402
from ray_diffnas.searchers.memory import SearchMemory  # noqa: E402
from ray_diffnas.spaces.unet_space import UNetSpace  # noqa: E402

NUM_SAMPLES = 4
SEARCH_FLAGS = [
    "--dataset",
    "digits",
    "--num-samples",
    str(NUM_SAMPLES),
    "--max-iterations",
    "2",
    "--steps-per-iteration",
    "10",
    "--rfid-samples",
    "64",
    "--sampler-steps",
    "2",
    "--batch-size",
    "16",
    "--cpus-per-trial",
    "1",
]
SPACE = UNetSpace(image_size=8)  # the space of the digits search above: what the LLM server proposes from
MOMENTS = {"time": 0.5, "state-write": 0.15, "upload": 0.15, "searcher": 0.2}  # kinds and their odds
RESUME_ODDS = 0.35  # a resume is killed again within its first seconds this often (two kills in a row)
POLL_S = 0.002
ATTEMPT_LIMIT_S = 600


@dataclass
class Kill:
    """One SIGKILL: when, why, what the search had done, and whether the checks after it held."""

    searcher: str
    life: int
    attempt: int  # 0 = the start, 1.. = resumes
    kind: str  # time | resume | state-write | upload | searcher
    planned_s: float  # the drawn delay (for event kinds: when the trigger was armed)
    at_s: float  # seconds after the attempt started
    before_first_save: bool  # Tune had saved no experiment state yet
    finished_trials: int  # finished trials in the memory file (or results) at the kill
    problems: list[str] = field(default_factory=list)


@dataclass
class Moment:
    kind: str
    delay: float


def draw_moment(rng: np.random.Generator, searcher: str, resuming: bool, horizon: float) -> Moment:
    if resuming and rng.random() < RESUME_ODDS:
        return Moment("resume", float(rng.uniform(0, 15)))
    kind = str(rng.choice(list(MOMENTS), p=list(MOMENTS.values())))
    if kind == "searcher" and searcher == "random":  # Tune's random search has no model or LLM to catch
        kind = "time"
    # Event kinds are armed after a random delay, so that the event is not always the first one.
    return Moment(kind, float(rng.uniform(0, horizon if kind == "time" else horizon / 2)))


# --- watching the search --------------------------------------------------------------------------


def _ray_sessions() -> set[Path]:
    return set(Path(tempfile.gettempdir(), "ray").glob("session_2*"))


def _staging_folders(sessions: set[Path]) -> list[Path]:
    return [p for s in sessions for p in s.glob(f"artifacts/*/{TUNE_FOLDER}/driver_artifacts")]


def _state_files(tune: Path) -> dict[str, float]:
    return {
        p.name: p.stat().st_mtime_ns
        for p in tune.glob("*")
        if p.suffix in (".json", ".parquet", ".pkl") and p.is_file()
    }


class Trigger:
    """Fires once the moment has come: a delay passed, or an event the search writes after it."""

    def __init__(
        self, moment: Moment, output: Path, log: Path, server: FakeLLMServer | None, sessions_before: set[Path]
    ) -> None:
        self.moment, self.output, self.log, self.server = moment, output, log, server
        self.sessions_before = sessions_before
        self.armed = False
        self._seen: Any = None

    def _arm(self) -> None:
        self.armed = True
        if self.moment.kind == "upload":
            self._seen = _state_files(self.output / TUNE_FOLDER)
        elif self.moment.kind == "searcher":
            self._seen = (
                self.log.stat().st_size if self.log.exists() else 0,
                len(self.server.requests) if self.server else 0,
            )
            if self.server is not None:
                self.server.script = [Reply(delay=3.0)]  # the next LLM call hangs: the kill lands inside it

    def fired(self, elapsed: float) -> bool:
        if elapsed < self.moment.delay:
            return False
        if self.moment.kind in ("time", "resume"):
            return True
        if not self.armed:
            self._arm()
            return False
        if self.moment.kind == "state-write":
            folders = _staging_folders(_ray_sessions() - self.sessions_before)
            try:
                return any(p.name.startswith((".", "tmp-")) and p.is_file() for f in folders for p in f.iterdir())
            except OSError:  # a temporary file renamed while we looked: that was a write too
                return True
        if self.moment.kind == "upload":
            return _state_files(self.output / TUNE_FOLDER).items() - self._seen.items() != set()
        size, requests = self._seen
        if self.server is not None:
            return len(self.server.requests) > requests
        with self.log.open("rb") as handle:  # the graph searcher logs before it trains
            handle.seek(size)
            return b"GraphDiffusionSearcher: training on" in handle.read()


# --- checks ---------------------------------------------------------------------------------------


def _finished_in_memory(output: Path) -> int:
    try:
        memory, _ = SearchMemory.load(output / TUNE_FOLDER / MEMORY_FILE)
        return len(memory.records(["completed", "stopped"]))
    except Exception:  # noqa: BLE001 (no memory yet, or the random searcher)
        return 0


def check_files(output: Path) -> list[str]:
    """Every file the search saved parses: options, Tune's state, the memory, each trial's results."""
    problems = []
    tune = output / TUNE_FOLDER
    for path in [output / OPTIONS_FILE, *tune.glob("*.json"), *tune.glob("tuner.pkl")]:
        if path.exists() and not _parses(path.read_bytes()):
            problems.append(f"{path.name} is cut off or damaged")
    for path in [output / "results.parquet", *tune.glob("*.parquet"), *tune.glob("searcher-state-*.pkl")]:
        if path.exists():
            try:
                (SearchMemory.load(path) if path.parent == tune else pq.read_table(path))
            except Exception as error:  # noqa: BLE001 (any failure to read is the finding)
                problems.append(f"{path.name} does not load ({type(error).__name__}: {error})")
    for path in tune.glob("*/result.json"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            try:
                json.loads(line)
            except ValueError:
                problems.append(f"{path.parent.name[:24]}/result.json line {number} is cut off")
    return problems


def _parses(data: bytes) -> bool:
    """Whether a Tune state file reads back: JSON, or a pickle (Tune pickles searcher states into *.json)."""
    try:
        json.loads(data)
        return True
    except ValueError:
        pass
    try:
        pickle.loads(data)
        return True
    except Exception:  # noqa: BLE001 (a cut-off pickle fails in many ways)
        return False


def trial_iterations(output: Path) -> dict[str, int]:
    """The last iteration each trial reported, from Tune's per-trial result files."""
    seen = {}
    for path in (output / TUNE_FOLDER).glob("*/result.json"):
        for line in path.read_text().splitlines():
            try:
                result = json.loads(line)
            except ValueError:
                continue
            seen[result["trial_id"]] = max(seen.get(result["trial_id"], 0), int(result["training_iteration"]))
    return seen


def check_steps(now: dict[str, int], before: dict[str, int]) -> list[str]:
    return [
        f"trial {t} went back from iteration {i} to {now.get(t, 0)}" for t, i in before.items() if now.get(t, 0) < i
    ]


def check_finished(output: Path, searcher: str, options_text: str) -> list[str]:
    """What a finished search must hold: num_samples trials, no duplicates, memory = results."""
    problems = []
    results = pd.read_parquet(output / "results.parquet")
    if len(results) != NUM_SAMPLES:
        problems.append(f"results.parquet has {len(results)} trials, not {NUM_SAMPLES}")
    if results["arch_key"].isna().any() or not results["arch_key"].is_unique:
        problems.append(f"an architecture was evaluated twice: {sorted(results['arch_key'].astype(str))}")
    if not set(results["status"]) <= {"completed", "stopped"}:
        problems.append(f"statuses {dict(Counter(results['status']))}")
    if (output / OPTIONS_FILE).read_text() != options_text:
        problems.append(f"{OPTIONS_FILE} changed")
    if searcher == "random":
        return problems
    memory, _ = SearchMemory.load(output / TUNE_FOLDER / MEMORY_FILE)
    trials = {r.trial_id: r for r in memory.records() if r.arch_key is not None}
    if set(trials) != set(results["trial_id"]):
        problems.append(f"memory trials {sorted(trials)} differ from results {sorted(results['trial_id'])}")
    for row in results.to_dict("records"):
        record = trials.get(row["trial_id"])
        if record is None:
            continue
        said = (record.arch_key, record.status, record.iterations, [round(v, 4) for v in record.curve])
        shown = (
            row["arch_key"],
            row["status"],
            int(row["training_iteration"]),
            [round(v, 4) for v in row["rfid_curve"]],
        )
        if said != shown:
            problems.append(f"memory says {row['trial_id']} is {said}, results {shown}")
    return problems


# --- one life ------------------------------------------------------------------------------------------


def run_life(
    searcher: str,
    life: int,
    seed: int,
    folder: Path,
    horizon: float,
    max_kills: int,
    server: FakeLLMServer | None,
    env: dict[str, str],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Starts one search, kills and resumes it until a run finishes it; returns its kills and checks."""
    rng = np.random.default_rng([seed, ["random", "graph", "gpt4"].index(searcher), life])
    shutil.rmtree(folder, ignore_errors=True)  # a life cut short by this script's own end starts again
    folder.mkdir(parents=True)
    output = folder / "search"
    command = [
        sys.executable,
        "-m",
        "ray_diffnas",
        "search",
        "--searcher",
        searcher,
        "--seed",
        str(life),
        "--output",
        str(output),
        *SEARCH_FLAGS,
    ]
    kills: list[Kill] = []
    highest: dict[str, int] = {}
    options_text = None
    for attempt in range(max_kills + 1):
        moment = draw_moment(rng, searcher, attempt > 0, horizon) if attempt < max_kills else None
        log = folder / f"attempt-{attempt}.log"
        sessions = _ray_sessions()
        with log.open("wb") as sink:
            driver = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        trigger = moment and Trigger(moment, output, log, server, sessions)
        start = time.monotonic()
        while driver.poll() is None and time.monotonic() - start < ATTEMPT_LIMIT_S:
            if trigger and trigger.fired(time.monotonic() - start):
                break
            time.sleep(POLL_S)
        at = time.monotonic() - start
        if server is not None:
            server.script = []
        killed = driver.poll() is None
        if killed:
            before_save = not list((output / TUNE_FOLDER).glob("experiment_state-*.json"))
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
        for session in _ray_sessions() - sessions:  # nothing of a dead Ray may help the next attempt
            shutil.rmtree(session, ignore_errors=True)
        if killed:
            kill = Kill(
                searcher,
                life,
                attempt,
                moment.kind if moment else "limit",
                round(moment.delay, 2) if moment else 0,
                round(at, 2),
                before_save,
                _finished_in_memory(output),
            )
            now = trial_iterations(output)
            kill.problems += check_files(output) + check_steps(now, highest)
            highest = {t: max(i, highest.get(t, 0)) for t, i in now.items()}
            kills.append(kill)
            say(
                f"  {searcher} life {life} attempt {attempt}: killed at {at:.1f} s ({kill.kind}, planned "
                f"{kill.planned_s} s){' before the first save' if before_save else ''}, "
                f"{kill.finished_trials} finished; {kill.problems or 'files ok'}"
            )
            if (output / OPTIONS_FILE).exists():  # killed before the options were saved: a user starts it again
                options_text = options_text or (output / OPTIONS_FILE).read_text()
                command = [sys.executable, "-m", "ray_diffnas", "search", "--resume", str(output)]
            continue
        # The run ended by itself: it must have finished the search.
        problems = (
            []
            if driver.returncode == 0
            else [f"the run exited {driver.returncode}: " + log.read_text()[-1500:].replace("\n", " | ")]
        )
        if not problems:
            options_text = options_text or (output / OPTIONS_FILE).read_text()
            problems += check_files(output) + check_steps(trial_iterations(output), highest)
            problems += check_finished(output, searcher, options_text)
        for kill in kills:
            kill.problems += problems
        say(
            f"  {searcher} life {life}: finished after {len(kills)} kill(s) in attempt {attempt} ({at:.1f} s); "
            f"{problems or 'every check held'}"
        )
        return {
            "searcher": searcher,
            "life": life,
            "finished": driver.returncode == 0,
            "problems": problems,
            "kills": [asdict(k) for k in kills],
        }
    raise AssertionError("unreachable: the last attempt is never killed")


# --- the table ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--searchers", nargs="+", default=["random", "graph", "gpt4"], choices=["random", "graph", "gpt4"]
    )
    parser.add_argument("--kills", type=int, default=30, help="kills per searcher, at least")
    parser.add_argument("--max-kills-per-life", type=int, default=6)
    parser.add_argument("--horizon", type=float, default=60.0, help="time kills fall in U(0, horizon) s of an attempt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default="/tmp/ray_diffnas_kill_anywhere")
    parser.add_argument("--output", default="benchmarks/results/kill_anywhere.json")
    args = parser.parse_args()
    work = Path(args.work_dir)
    print(f"kill-anywhere: seed {args.seed}, >= {args.kills} kills per searcher, horizon {args.horizon} s", flush=True)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # each driver starts its own Ray
    lives = []
    with FakeLLMServer(SPACE, seed=args.seed) as server:
        for searcher in args.searchers:
            searcher_env = {**env, "OPENAI_API_KEY": "sk-kill-anywhere", "OPENAI_BASE_URL": server.url}
            made, life = 0, 0
            while made < args.kills:
                cached = work / searcher / f"life-{life}.json"
                if cached.exists():
                    result = json.loads(cached.read_text())
                else:
                    result = run_life(
                        searcher,
                        life,
                        args.seed,
                        work / searcher / f"life-{life}",
                        args.horizon,
                        args.max_kills_per_life,
                        server if searcher == "gpt4" else None,
                        searcher_env,
                        lambda line: print(line, flush=True),
                    )
                    cached.write_text(json.dumps(result, indent=1))
                lives.append(result)
                made += len(result["kills"])
                life += 1
    rows = summarize(lives)
    report(
        rows,
        [
            ("searcher", "searcher", str),
            ("lives", "lives", str),
            ("kills", "kills", str),
            ("ok", "met every check", str),
            ("share", "share", lambda v: f"{v:.0%}"),
            ("before_first_save", "before 1st save", str),
            ("in_resume", "in a resume", str),
            ("second_in_a_row", "resume kind", str),
            ("kinds", "moments", lambda v: ", ".join(f"{k} {n}" for k, n in sorted(v.items()))),
        ],
        args.output,
    )
    for life in lives:
        for kill in life["kills"]:
            print(
                f"{kill['searcher']:6s} life {kill['life']} attempt {kill['attempt']}: {kill['kind']:11s} at "
                f"{kill['at_s']:6.2f} s (planned {kill['planned_s']:5.2f})  {'ok' if not kill['problems'] else kill['problems']}"
            )


def summarize(lives: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for searcher in dict.fromkeys(life["searcher"] for life in lives):
        mine = [life for life in lives if life["searcher"] == searcher]
        kills = [k for life in mine for k in life["kills"]]
        ok = sum(not k["problems"] for k in kills)
        rows.append(
            {
                "searcher": searcher,
                "lives": len(mine),
                "kills": len(kills),
                "ok": ok,
                "share": ok / max(len(kills), 1),
                "before_first_save": sum(k["before_first_save"] for k in kills),
                "in_resume": sum(k["attempt"] > 0 for k in kills),
                "second_in_a_row": sum(k["kind"] == "resume" for k in kills),
                "kinds": dict(Counter(k["kind"] for k in kills)),
                "lives_detail": mine,
            }
        )
    return rows


if __name__ == "__main__":
    main()
