"""A small OpenAI-compatible chat-completions server on 127.0.0.1, scripted per test.

Not a mock of the client: real HTTP on a loopback port the OS picks, so ``openai``'s own retries,
timeouts and parsing run as they do against vLLM or a hosted API. A test scripts it with

* ``answer(body) -> str``: the reply text for a request (default: a fixed text);
* ``faults``: what the first requests get instead, in arrival order, e.g. ``[429, 500]`` —
  a status (a 429 or 5xx carries ``retry-after-ms: 20``: the client honours it, so tests stay
  fast; a timeout has no such header and waits the package's own backoff), ``"slow"``
  (sleeps past the client's timeout), or ``"garbage"`` (HTTP 200 with a body that is not JSON);
* ``status_for(body) -> int | None``: a status for every request it matches (e.g. 401).

It records every request body (``requests``) and its headers (``headers``), stops when the ``with`` block ends, and
refuses to serve longer than ``lifetime`` seconds (a hung test ends by itself).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


class OpenAIStandIn:
    def __init__(
        self,
        answer: Callable[[dict], str] = lambda body: "<think>ok</think><answer>1</answer>",
        faults: list | None = None,
        status_for: Callable[[dict], int | None] | None = None,
        slow_seconds: float = 2.0,
        lifetime: float = 120.0,
    ):
        self.answer, self.faults, self.status_for = answer, list(faults or []), status_for
        self.slow_seconds, self.lifetime = slow_seconds, lifetime
        self.requests: list[dict] = []
        self.headers: list[dict] = []  # each request's HTTP headers, lower-case names
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    # ---- what a request gets
    def reply(self, body: dict, headers: dict) -> tuple[int, dict, bytes]:
        with self.lock:
            self.requests.append(body)
            self.headers.append(headers)
            fault = self.faults.pop(0) if self.faults else None
        status = self.status_for(body) if self.status_for else None
        if fault == "slow":
            time.sleep(self.slow_seconds)
        elif fault == "garbage":
            return 200, {"Content-Type": "application/json"}, b"<html>not json"
        elif fault is not None:
            status = fault
        if status is not None and status != 200:
            headers = {"retry-after-ms": "20"} if status == 429 or status >= 500 else {}
            error = {"error": {"message": f"stand-in says {status}", "type": "error", "code": status}}
            return status, headers, json.dumps(error).encode()
        text = self.answer(body)
        payload = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": len(json.dumps(body["messages"])) // 4,
                "completion_tokens": len(text.split()),
                "total_tokens": 0,
            },
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()

    # ---- the server
    def __enter__(self) -> OpenAIStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                if not self.path.endswith("/chat/completions"):
                    status, headers, data = 404, {}, b'{"error": {"message": "no such route"}}'
                else:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    status, headers, data = standin.reply(body, {k.lower(): v for k, v in self.headers.items()})
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timed out)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.timer = threading.Timer(self.lifetime, self.server.shutdown)
        self.timer.daemon = True
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.cancel()
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"


# ---- reading a request


def user_text(body: dict) -> str:
    """The text of the request's (last) user turn."""
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def attached_images(body: dict) -> list[Image.Image]:
    """The images of the user turn, decoded from their ``data:image/png;base64,`` URIs (anything else fails)."""
    content = body["messages"][-1]["content"]
    images = []
    for part in [] if isinstance(content, str) else content:
        if part["type"] == "image_url":
            url = part["image_url"]["url"]
            assert url.startswith("data:image/png;base64,"), url[:40]
            images.append(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    return images
