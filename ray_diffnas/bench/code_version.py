"""Which code made a benchmark run: recorded beside each kept run, so that a summary's runs can be told
apart by the code that made them.

A kept run is matched by its settings, not by its code (a run of hours is reused across changes that do
not touch it); this record is what a reader checks when a change may have touched it.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from ray_diffnas import __version__

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def code_version() -> str:
    """The git commit of the package's checkout (``+changes`` when its files differ from it), or the
    package version where it is not a git checkout. Taken once per process, at its first call (a
    benchmark takes it as it starts: commits may land while it runs, and it runs the code it imported).

    Example:
        >>> code_version().startswith(("ray_diffnas ", "git "))
        True
    """
    try:
        in_checkout = Path(_git("rev-parse", "--show-toplevel")).resolve() == PACKAGE_ROOT.parent
        if in_checkout and _git("ls-files", "--", str(PACKAGE_ROOT)):  # not an install inside another repository
            commit = _git("rev-parse", "--short=12", "HEAD")
            changed = _git("status", "--porcelain", "--", str(PACKAGE_ROOT))
            return f"git {commit}" + ("+changes" if changed else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return f"ray_diffnas {__version__}"


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(PACKAGE_ROOT), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()
