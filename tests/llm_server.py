"""A scripted OpenAI-compatible chat server on loopback, so that tests drive the real ``openai`` client.

Each request takes the next scripted reply; when the script is empty the server answers with valid,
distinct architectures sampled from the space (a well-behaved LLM).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from ray_diffnas.spaces.protocol import SearchSpace


@dataclass
class Reply:
    """One scripted answer."""

    content: str | None = None  # the assistant's message; None: sample valid proposals
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (longer than the client's timeout: a time-out)
    raw_body: bytes | None = None  # sent as is (garbage)


class FakeLLMServer:
    """``with FakeLLMServer(space) as server: GPT4Searcher(base_url=server.url)``."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def user_prompts(self) -> list[str]:
        return [r["messages"][-1]["content"] for r in self.requests]

    def sample_proposals(self, count: int) -> str:
        with self._lock:
            archs = [self.space.sample(self._rng).to_dict() for _ in range(count)]
        return json.dumps({"reasoning": "diverse start", "proposals": archs})

    def _next(self, body: dict[str, Any], authorization: str) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.authorizations.append(authorization)
            return self.script.pop(0) if self.script else Reply()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reply = server._next(body, self.headers.get("Authorization", ""))
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.raw_body is not None:
                    payload = reply.raw_body
                elif reply.status != 200:
                    payload = json.dumps(
                        {"error": {"message": f"scripted {reply.status}", "type": "server_error"}}
                    ).encode()
                else:
                    count = _requested_count(body)
                    content = reply.content if reply.content is not None else server.sample_proposals(count)
                    payload = json.dumps(_completion(content, body)).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a time-out): that is the point

        return Handler


def _requested_count(body: dict[str, Any]) -> int:
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema", {})
    return int(schema.get("properties", {}).get("proposals", {}).get("maxItems", 4))


def _completion(content: str, body: dict[str, Any]) -> dict[str, Any]:
    prompt_tokens = sum(len(m["content"]) for m in body["messages"]) // 4
    completion_tokens = len(content) // 4
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
