"""One OpenAI-compatible chat-completions client, on the ``openai`` package.

Any server that speaks ``POST {base_url}/chat/completions`` works: vLLM or SGLang serving a local
model, or a hosted API. What this module adds around ``openai.OpenAI``:

* **Retries are the package's own** (``max_retries``): a timeout, a connection error, 408 / 409 /
  429 / 5xx are retried with exponential backoff (0.5 s doubling to 8 s, with jitter), and a
  ``Retry-After`` / ``retry-after-ms`` header of the server is honoured. How many retries a reply
  took is returned with it (:attr:`ChatReply.retries`).
* **A request that still fails** (retries exhausted, or a 400 / 413 / 422 for this request alone)
  comes back as a :class:`ChatFailed` value, not an exception: the caller records it and a rerun
  asks again.
* **A mistake that fails every request** — 401 / 403 (wrong or missing key), 404 (wrong model
  name or URL), or a server that cannot be reached before any request got through — raises one
  :class:`~egt.errors.EgtError` line naming the URL, the model and what to check.
* **Concurrency**: :meth:`ChatClient.map` runs up to ``concurrency`` requests at once on threads
  (the ``openai`` client is thread-safe) and yields each reply as it arrives, so it can be stored
  at once; messages are built on the worker threads, a few at a time, so a large pool of images
  is never held in memory at once.

The API key is read from an environment variable (``api_key_env``) and never stored; a local
server without authentication needs none (the placeholder ``EMPTY`` is sent, as vLLM expects).
Images go as ``image_url`` parts holding ``data:image/png;base64,…`` URIs (:func:`image_part`).
"""

from __future__ import annotations

import base64
import io
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from egt.errors import EgtError

__all__ = ["ChatClient", "ChatFailed", "ChatReply", "ServerUnreachable", "image_part", "user_message"]

T = TypeVar("T")
NO_KEY = "EMPTY"  # sent when the key variable is unset: local servers accept any key


class ServerUnreachable(EgtError):
    """No request got through: the server is down or the URL is wrong (the run cannot go on)."""


@dataclass(frozen=True)
class ChatReply:
    """One answered request: the text, the tokens it cost, the retries it took."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    retries: int = 0
    finish_reason: str | None = None


@dataclass(frozen=True)
class ChatFailed:
    """A request that got no answer; ``error`` says why, ``retries`` how often it was retried."""

    error: str
    retries: int = 0


def image_part(image: Any) -> dict:
    """A PIL image as an ``image_url`` content part with a ``data:image/png;base64,…`` URI."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": uri}}


def user_message(text: str, images: Iterable[Any] = ()) -> dict:
    """The user turn: the images first (R1-Reward's layout), then the text; plain text without images."""
    parts = [image_part(im) for im in images]
    if not parts:
        return {"role": "user", "content": text}
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}


class ChatClient:
    """``POST {base_url}/chat/completions`` through ``openai.OpenAI`` (module doc: retries, failures).

    ``base_url`` is the API root (``http://127.0.0.1:8000/v1``; a trailing ``/chat/completions``
    is dropped). ``timeout`` is seconds per attempt; ``max_retries`` attempts follow a retryable
    failure. ``extra`` is sent with every request (e.g. ``{"seed": 1}``)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 4,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        concurrency: int = 1,
    ):
        import openai  # a few hundred ms: only once a client is made

        if not base_url:
            raise EgtError("an OpenAI-compatible client needs a base URL (e.g. http://127.0.0.1:8000/v1)")
        if concurrency < 1:
            raise EgtError(f"--concurrency: must be ≥ 1, got {concurrency}")
        self.base_url = base_url.rstrip("/").removesuffix("/chat/completions")
        self.model, self.api_key_env = model, api_key_env
        self.max_retries, self.max_tokens, self.temperature = max_retries, max_tokens, temperature
        self.concurrency = concurrency
        self.answered = 0  # replies so far: until one arrives, an unreachable server stops the run
        self._lock = threading.Lock()
        key = os.environ.get(api_key_env) if api_key_env else None
        self.key_is_set = bool(key)
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=key or NO_KEY, timeout=timeout, max_retries=max_retries
        )

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    def complete(self, messages: list[dict], **extra: Any) -> ChatReply | ChatFailed:
        """One chat completion; :class:`ChatFailed` when it cannot be had (module doc)."""
        import openai

        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        try:
            raw = self.client.chat.completions.with_raw_response.create(**body, **extra)
        except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
            where = f"${self.api_key_env}" + ("" if self.key_is_set else ", which is unset")
            raise EgtError(
                f"{self.base_url}: HTTP {e.status_code} {self._detail(e)}: wrong or missing API key (read from {where})"
            ) from None
        except openai.NotFoundError as e:
            raise EgtError(
                f"{self.base_url}: HTTP 404 {self._detail(e)}: no model {self.model!r} there — check the model "
                "name (the one the server serves) and that the URL is the API root (e.g. http://host:8000/v1)"
            ) from None
        except openai.APIConnectionError as e:  # timeouts included; retried by the package already
            what = "timed out" if isinstance(e, openai.APITimeoutError) else f"connection error ({e.__cause__ or e})"
            with self._lock:
                unreachable = self.answered == 0
            if unreachable and not isinstance(e, openai.APITimeoutError):
                raise ServerUnreachable(
                    f"{self.base_url}: cannot reach the server ({what} after {self.max_retries} retries); "
                    "is it running, and is the URL right?"
                ) from None
            return ChatFailed(f"{what} after {self.max_retries} retries", retries=self.max_retries)
        except openai.APIStatusError as e:
            retried = self.client._should_retry(e.response)  # the package's own rule: 408/409/429/5xx
            retries = self.max_retries if retried else 0
            return ChatFailed(f"HTTP {e.status_code} {self._detail(e)} ({retries} retries)", retries=retries)
        except openai.APIError as e:
            return ChatFailed(f"malformed reply ({e})")
        try:  # a reply that is not a chat completion: not JSON, no choices, no message text
            completion = raw.parse()
            choice = completion.choices[0]
            text = choice.message.content
        except (ValueError, AttributeError, IndexError, TypeError) as e:
            return ChatFailed(f"malformed reply ({type(e).__name__})", retries=raw.retries_taken)
        if not isinstance(text, str):
            return ChatFailed("malformed reply (no choices[0].message.content)", retries=raw.retries_taken)
        usage = completion.usage
        with self._lock:
            self.answered += 1
        return ChatReply(
            text=text,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            retries=raw.retries_taken,
            finish_reason=getattr(choice, "finish_reason", None),
        )

    @staticmethod
    def _detail(e: Any) -> str:
        """The server's own message of an HTTP error (``{"error": {"message": …}}`` or ``{"message": …}``)."""
        body = getattr(e, "body", None)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            body = body["error"]
        message = body.get("message") if isinstance(body, dict) else None
        text = str(message or e.response.reason_phrase or "").strip()
        return f"({text.splitlines()[0][:200]})" if text else ""

    def map(
        self, jobs: Iterable[T], messages: Callable[[T], list[dict]], extra: Callable[[T], dict] | None = None
    ) -> Iterator[tuple[T, ChatReply | ChatFailed]]:
        """``(job, reply)`` for every job, as replies arrive, ``concurrency`` requests at a time.

        ``messages(job)`` (and ``extra(job)``, per-request fields such as a seed) run on the worker
        thread. An :class:`EgtError` (module doc) or an interrupt cancels what has not started and
        does not wait for the requests in flight."""

        def one(job: T) -> ChatReply | ChatFailed:
            return self.complete(messages(job), **(extra(job) if extra else {}))

        pending = iter(jobs)
        running: dict[Future, T] = {}
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="egt-chat")
        try:
            while True:
                while len(running) < 2 * self.concurrency:  # a few built ahead, never the whole pool
                    job = next(pending, _END)
                    if job is _END:
                        break
                    running[pool.submit(one, job)] = job
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    job = running.pop(future)
                    yield job, future.result()
        finally:
            pool.shutdown(wait=not running, cancel_futures=True)


_END: Any = object()
