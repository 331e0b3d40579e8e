"""The one OpenAI-compatible client against a real HTTP stand-in on 127.0.0.1 (tests/openai_standin.py):
the openai package's retries on 429 / 5xx / timeouts, failures as values, one-line errors for a
wrong key / model / URL, images as data URIs, concurrency."""

from __future__ import annotations

import threading
import time

import pytest
from PIL import Image

from egt.clients import ChatClient, ChatFailed, ChatReply, ServerUnreachable, user_message
from egt.errors import EgtError
from openai_standin import OpenAIStandIn, attached_images, user_text


def test_rate_limits_and_server_errors_are_retried_and_counted():
    with OpenAIStandIn(faults=[429, 503, 500]) as server:
        reply = ChatClient(server.url, "m", max_retries=3, timeout=5).complete([user_message("hi")])
    assert isinstance(reply, ChatReply) and reply.text.endswith("<answer>1</answer>")
    assert reply.retries == 3 and len(server.requests) == 4
    assert reply.prompt_tokens > 0 and reply.completion_tokens == 1 and reply.finish_reason == "stop"


def test_a_request_that_keeps_failing_is_a_value_not_an_exception():
    with OpenAIStandIn(faults=[500, 500, 500, "garbage"], slow_seconds=0) as server:
        client = ChatClient(server.url, "m", max_retries=2, timeout=5)
        client.answered = 1  # the server answered before: a failure is this request's alone
        failed = client.complete([user_message("a")])
        garbage = client.complete([user_message("b")])
        after = ChatClient(server.url, "m", max_retries=2).complete([user_message("c")])
    assert isinstance(failed, ChatFailed) and "HTTP 500" in failed.error and failed.retries == 2
    assert isinstance(garbage, ChatFailed) and "malformed reply" in garbage.error
    assert isinstance(after, ChatReply)  # the stand-in answers once its faults are used up
    assert len(server.requests) == 5


def test_a_timeout_is_retried_after_the_package_backoff():
    with OpenAIStandIn(faults=["slow"], slow_seconds=1.0) as server:
        started = time.monotonic()
        reply = ChatClient(server.url, "m", max_retries=1, timeout=0.3).complete([user_message("hi")])
    assert isinstance(reply, ChatReply) and reply.retries == 1 and len(server.requests) == 2
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "status, needle", [(401, "HTTP 401 .*wrong or missing API key"), (403, "HTTP 403"), (404, "no model 'm' there")]
)
def test_wrong_key_or_model_is_one_line_and_not_retried(status, needle):
    with OpenAIStandIn(status_for=lambda body: status) as server:
        with pytest.raises(EgtError, match=needle) as caught:
            ChatClient(server.url, "m", max_retries=3).complete([user_message("hi")])
    assert "\n" not in str(caught.value) and server.url in str(caught.value)
    assert len(server.requests) == 1


def test_an_unreachable_server_stops_at_once():
    with OpenAIStandIn() as server:
        url = server.url  # a loopback port nobody listens on once the stand-in is gone
    with pytest.raises(ServerUnreachable, match="cannot reach the server"):
        ChatClient(url, "m", max_retries=0, timeout=2).complete([user_message("hi")])


def test_key_from_the_named_variable_and_images_as_data_uris(monkeypatch):
    monkeypatch.setenv("MY_TEACHER_KEY", "sk-test-123")
    red, blue = Image.new("RGB", (5, 3), (255, 0, 0)), Image.new("RGB", (2, 2), (0, 0, 255))
    with OpenAIStandIn() as server:
        ChatClient(server.url, "m", api_key_env="MY_TEACHER_KEY").complete([user_message("look", [red, blue])])
        monkeypatch.delenv("MY_TEACHER_KEY")
        ChatClient(server.url, "m", api_key_env="MY_TEACHER_KEY").complete([user_message("text only")])
    assert server.headers[0]["authorization"] == "Bearer sk-test-123"
    assert server.headers[1]["authorization"] == "Bearer EMPTY"
    images = attached_images(server.requests[0])
    assert [im.size for im in images] == [(5, 3), (2, 2)] and images[0].convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    assert user_text(server.requests[0]) == "look" and server.requests[1]["messages"][0]["content"] == "text only"


def test_map_runs_requests_concurrently_and_yields_each_once():
    running, peak, lock = [0], [0], threading.Lock()

    def answer(body):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.1)
        with lock:
            running[0] -= 1
        return user_text(body).upper()

    with OpenAIStandIn(answer=answer) as server:
        client = ChatClient(server.url, "m", concurrency=4)
        out = dict(client.map(range(12), lambda j: [user_message(f"job {j}")], lambda j: {"seed": j}))
    assert {j: r.text for j, r in out.items()} == {j: f"JOB {j}" for j in range(12)}
    assert 2 <= peak[0] <= 4
    assert sorted(body["seed"] for body in server.requests) == list(range(12))
