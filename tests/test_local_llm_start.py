"""The local LLM server is proven to answer before a search relies on it.

The server itself is llama.cpp; what it does when built for instructions the machine cannot run (die of
SIGSEGV on its first answer, seen on a virtual machine that reports AMX) is played by a stand-in process
on loopback HTTP that lists its model and then kills itself the same way.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from ray_diffnas.searchers.llm.local_server import LocalLLMError, LocalLLMServer

pytest.importorskip("llama_cpp", reason="needs the local-llm extra: pip install 'ray-diffnas[local-llm]'")

CRASHING_SERVER = """
import os, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"object": "list", "data": [{"id": "model"}]}')

    def do_POST(self):
        print("ggml: about to multiply with AMX tiles", flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)

HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


class CrashingServer(LocalLLMServer):
    def command(self) -> list[str]:
        return [sys.executable, "-c", CRASHING_SERVER, str(self.port)]


def test_a_server_that_dies_on_its_first_answer_is_a_clear_error(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    server = CrashingServer(model_path=model, start_timeout=30)
    with pytest.raises(LocalLLMError) as caught:
        server.start()
    message = str(caught.value)
    assert "died of SIGSEGV on its first answer" in message
    assert "-mno-amx-int8" in message and "pip install" in message  # the fix
    assert "about to multiply with AMX tiles" in message  # the server's own log
    assert server._process is None  # stopped, its log deleted


class LoadingServer(LocalLLMServer):
    """A server still loading its model: it never answers."""

    def command(self) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(120)"]


def test_ctrl_c_while_the_model_loads_leaves_no_server_behind(tmp_path: Path) -> None:
    """``__exit__`` does not run when ``__enter__`` raises: the server must be stopped by ``start`` itself."""
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    server = LoadingServer(model_path=model, start_timeout=60)
    # Python's own Ctrl-C handler: a Tune run earlier in this process may have left Tune's installed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))  # what Ctrl-C sends, while start waits
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt), server:
            pass
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert server._process is None  # stopped (and reaped), its log deleted
