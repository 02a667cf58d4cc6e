"""Running the command as a Ray job (``ray job submit --working-dir ...``) without losing its files.

Ray unpacks the job's working dir into a temporary folder, starts the driver there and may delete
that folder while the driver still runs (ray-project/ray#52343). Two things follow: a relative
``--output`` would be written into a folder that disappears, and any later ``os.getcwd()`` (Tune
calls it while listing the experiment at the end) raises ``FileNotFoundError``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ray_diffnas.errors import DiffNASError

# Set by Ray's job supervisor for the driver it starts; holds the job's runtime_env.
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def job_working_dir() -> str | None:
    """The ``working_dir`` of the Ray job this process is the driver of, or None outside such a job."""
    text = os.environ.get(JOB_CONFIG_ENV)
    if not text:
        return None
    try:
        runtime_env = json.loads(text).get("runtime_env") or {}
    except (ValueError, AttributeError):
        return None  # not ours to validate; Ray reads it too
    return runtime_env.get("working_dir") or None


def check_output_survives_job(flag: str, value: str | Path) -> None:
    """Refuse a relative output folder when Ray will delete the folder it is relative to.

    Raises:
        DiffNASError: if this is a Ray job with a working dir and ``value`` is a relative path.
    """
    if job_working_dir() is not None and not Path(value).expanduser().is_absolute():
        raise DiffNASError(
            f"{flag} {str(value)!r} is relative, and this runs as a Ray job with a working dir: the path would "
            f"land in Ray's temporary copy of that dir, which Ray deletes when the job ends, taking the results "
            f"with it. Pass an absolute folder that every node sees, e.g. {flag} /shared/runs/search."
        )


def leave_job_working_dir() -> None:
    """Under a Ray job with a working dir, move to the temp folder so a deleted cwd cannot crash Tune.

    Call it after every relative path the user gave has been resolved.
    """
    if job_working_dir() is not None:
        os.chdir(tempfile.gettempdir())
