"""A local HTTP server speaking OpenAI's chat-completions and Anthropic's messages wire formats, for the
"use my key" tests: Twig's model client talks real HTTP to it, and tests read back what it received.

- ``POST <base>/chat/completions`` (OpenAI, and custom OpenAI-compatible endpoints: any path prefix) wants
  ``Authorization: Bearer <key>``; ``POST <base>/v1/messages`` (Anthropic) wants ``x-api-key`` and
  ``anthropic-version``. A key not in :attr:`LlmPeer.keys` is answered 401 with the provider's own error body
  (OpenAI's echoes part of the key, as the real one does), a request missing what the format requires is a 400.
- :attr:`LlmPeer.requests` records every request: path, headers (lower-case names) and JSON body.
- :attr:`LlmPeer.mode` makes it misbehave: ``slow`` (answers after :attr:`slow_seconds`, or when the peer
  stops), ``500``, ``429``, ``malformed`` (200 with a body that is not a reply), ``not_json``, ``redirect``
  (307 to another path), ``nul`` (a reply containing NUL and a lone surrogate). OpenAI models named
  ``missing…`` do not exist (404 ``model_not_found``).
- :attr:`LlmPeer.on_request` is called in the server thread with each recorded request (e.g. to look at the
  caller's database connection while the call is in flight).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANTHROPIC_VERSION = "2023-06-01"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def key(self) -> str | None:
        """The API key the request carried (Bearer token or x-api-key)."""
        auth = self.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer "):]
        return self.headers.get("x-api-key")


@dataclass
class LlmPeer:
    base_url: str
    keys: set[str] = field(default_factory=set)
    requests: list[Recorded] = field(default_factory=list)
    mode: str = "ok"
    slow_seconds: float = 5.0
    reply: str | None = None  # the text to answer; default: names the model and echoes the last user message
    on_request: Callable[[Recorded], None] | None = None
    released: threading.Event = field(default_factory=threading.Event)

    @property
    def openai_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def anthropic_url(self) -> str:
        return self.base_url

    def answer_for(self, model: str, messages: list[dict[str, Any]]) -> str:
        if self.reply is not None:
            return self.reply
        last = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
        return f"[{model}] You asked: {last}"


def _openai_error(status: int, message: str, type_: str, code: str | None) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _anthropic_error(status: int, type_: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"type": "error", "error": {"type": type_, "message": message}}


def _hint(key: str) -> str:
    return key[:3] + "*" * 6 + key[-4:] if len(key) > 8 else "***"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        pass

    def do_POST(self) -> None:  # noqa: N802
        peer = self.server.peer
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        recorded = Recorded(method="POST", path=self.path, headers={k.lower(): v for k, v in self.headers.items()},
                            body=body)
        peer.requests.append(recorded)
        if peer.on_request is not None:
            peer.on_request(recorded)
        if self.path.endswith("/chat/completions"):
            status, payload = self._openai(peer, recorded)
        elif self.path.endswith("/v1/messages"):
            status, payload = self._anthropic(peer, recorded)
        else:
            status, payload = 404, {"error": {"message": f"Unknown path {self.path}", "type": "invalid_request_error"}}
        self._send(status, payload)

    # --- formats -------------------------------------------------------------------------------------------

    def _misbehave(self, peer: LlmPeer, openai: bool) -> tuple[int, Any] | None:
        if peer.mode == "slow":
            peer.released.wait(peer.slow_seconds)
            return None
        if peer.mode == "500":
            return (_openai_error(500, "The server had an error while processing your request.", "server_error", None)
                    if openai else _anthropic_error(500, "api_error", "Internal server error"))
        if peer.mode == "429":
            return (_openai_error(429, "You exceeded your current quota.", "insufficient_quota", "insufficient_quota")
                    if openai else _anthropic_error(429, "rate_limit_error", "Number of requests has exceeded your "
                                                                             "rate limit"))
        if peer.mode == "malformed":
            return 200, {"id": "x", "object": "chat.completion", "choices": []} if openai else {"type": "message",
                                                                                                "content": "oops"}
        if peer.mode == "not_json":
            return 200, b"<html>Bad gateway</html>"
        if peer.mode == "redirect":
            return 307, None
        return None

    def _openai(self, peer: LlmPeer, req: Recorded) -> tuple[int, Any]:
        key = req.key or ""
        if not req.headers.get("authorization", "").startswith("Bearer ") or key not in peer.keys:
            return _openai_error(401, f"Incorrect API key provided: {_hint(key)}. You can find your API key at "
                                      "https://platform.openai.com/account/api-keys.", "invalid_request_error",
                                 "invalid_api_key")
        body = req.body
        if (not isinstance(body, dict) or not isinstance(body.get("model"), str)
                or not isinstance(body.get("messages"), list) or not body["messages"]
                or not all(isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                           and isinstance(m.get("content"), str) for m in body["messages"])):
            return _openai_error(400, "Invalid request body.", "invalid_request_error", None)
        if body["model"].startswith("missing"):
            return _openai_error(404, f"The model `{body['model']}` does not exist or you do not have access to it.",
                                 "invalid_request_error", "model_not_found")
        misbehaving = self._misbehave(peer, openai=True)
        if misbehaving is not None:
            return misbehaving
        text = "Here\x00 is\ud800 text" if peer.mode == "nul" else peer.answer_for(body["model"], body["messages"])
        return 200, {"id": "chatcmpl-peer", "object": "chat.completion", "created": 1700000000, "model": body["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                                  "logprobs": None, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}

    def _anthropic(self, peer: LlmPeer, req: Recorded) -> tuple[int, Any]:
        key = req.headers.get("x-api-key", "")
        if key not in peer.keys:
            return _anthropic_error(401, "authentication_error", "invalid x-api-key")
        if req.headers.get("anthropic-version") != ANTHROPIC_VERSION:
            return _anthropic_error(400, "invalid_request_error", "anthropic-version: header is required")
        body = req.body
        messages = body.get("messages") if isinstance(body, dict) else None
        if (not isinstance(body, dict) or not isinstance(body.get("model"), str)
                or not isinstance(body.get("max_tokens"), int) or not isinstance(messages, list) or not messages
                or not all(isinstance(m, dict) and m.get("role") in ("user", "assistant")
                           and isinstance(m.get("content"), str) and m["content"].strip() for m in messages)
                or ("system" in body and not isinstance(body["system"], str))):
            return _anthropic_error(400, "invalid_request_error", "messages: invalid")
        misbehaving = self._misbehave(peer, openai=False)
        if misbehaving is not None:
            return misbehaving
        text = "Here\x00 is\ud800 text" if peer.mode == "nul" else peer.answer_for(body["model"], messages)
        return 200, {"id": "msg_peer", "type": "message", "role": "assistant", "model": body["model"],
                     "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                     "usage": {"input_tokens": 10, "output_tokens": 5}}

    def _send(self, status: int, payload: Any) -> None:
        if status == 307:
            data = b""
            self.send_response(307)
            self.send_header("Location", "/elsewhere" + self.path)
        else:
            if isinstance(payload, bytes):
                data, kind = payload, "text/html"
            else:
                # ensure_ascii keeps a lone surrogate encodable (as the escape "\ud800", as real JSON can carry it)
                data, kind = json.dumps(payload).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    peer: LlmPeer


@contextmanager
def run_llm_peer(*keys: str) -> Iterator[LlmPeer]:
    """Serve on a free port of 127.0.0.1 in a thread, accepting ``keys``; stop afterwards."""
    server = _Server(("127.0.0.1", 0), _Handler)
    host, port = server.server_address[:2]
    peer = LlmPeer(base_url=f"http://{host}:{port}", keys=set(keys))
    server.peer = peer
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        peer.released.set()  # let a "slow" handler finish at once
        server.shutdown()
        server.server_close()
        thread.join(5)
