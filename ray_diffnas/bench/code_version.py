"""Which code made a benchmark run: recorded beside each kept run, so that a summary's runs can be told
apart by the code that made them.

A kept run is matched by its settings, not by its code (a run of hours is reused across changes that do
not touch it); this record is what a reader checks when a change may have touched it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ray_diffnas import __version__

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def code_version() -> str:
    """The git commit of the package's checkout (``+changes`` when its files differ from it), or the
    package version where it is not a git checkout.

    Example:
        >>> code_version().startswith(("ray_diffnas ", "git "))
        True
    """
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        changed = _git("status", "--porcelain", "--", str(PACKAGE_ROOT))
    except (OSError, subprocess.SubprocessError):
        return f"ray_diffnas {__version__}"
    return f"git {commit}" + ("+changes" if changed else "")


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(PACKAGE_ROOT), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()
