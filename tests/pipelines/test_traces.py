"""``egt traces`` against an OpenAI-compatible stand-in on 127.0.0.1 that judges by looking at the
image: the fidelity filter, images sent, rate limits and server errors, a malformed answer, a
disagreeing verdict, --samples, orders, resume after a failure and after a kill, bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from egt.cli import main
from egt.judge.base import original_choice
from egt.judge.parse import parse_verdict
from egt.records import read_pairs
from egt.train.sft import select_traces
from openai_standin import OpenAIStandIn, attached_images, user_text

REPO = Path(__file__).resolve().parents[2]
COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}


def write_pool(folder: Path, kinds: list[str]) -> Path:
    """One pair per kind: ``good`` (label names the image's colour), ``flipped`` (the label is the
    wrong one), ``garble`` (the teacher answers out of format), ``shaky`` (wrong the first time)."""
    (folder / "img").mkdir(parents=True)
    names = list(COLOURS)
    rows = []
    for i, kind in enumerate(kinds):
        colour, other = names[i % 3], names[(i + 1) % 3]
        Image.new("RGB", (8, 8), COLOURS[colour]).save(folder / "img" / f"{i}.png")
        responses = [f"It is {colour}.", f"It is {other}."] if i % 2 else [f"It is {other}.", f"It is {colour}."]
        right = responses.index(f"It is {colour}.")
        question = f"What colour is square {i}?" + (f" ({kind})" if kind in ("garble", "shaky") else "")
        label = 1 - right if kind == "flipped" else right
        rows.append({"id": f"p{i}", "question": question, "images": [f"img/{i}.png"], "responses": responses,
                     "preferred": label, "meta": {"kind": kind}})  # fmt: skip
    path = folder / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def looking_teacher(seen: Counter | None = None):
    """Answers by the image's colour; never told the label. ``(garble)``: out of format; ``(shaky)``:
    the wrong response the first time a prompt is asked."""
    seen = Counter() if seen is None else seen

    def answer(body: dict) -> str:
        text = user_text(body)
        (image,) = attached_images(body)
        pixel = image.convert("RGB").getpixel((0, 0))
        colour = next(name for name, rgb in COLOURS.items() if rgb == pixel)
        first, second = re.search(r"Response 1: (.*)\nResponse 2: (.*?)(?:\n|$)", text).groups()
        k = 1 if colour in first else 2
        seen[text] += 1
        if "(shaky)" in text and seen[text] == 1:
            k = 3 - k
        if "(garble)" in text:
            return f"Response {k} is better."
        return f"<think>The square is {colour}; response {k} says so.</think><answer>{k}</answer>"

    return answer


def traces(url: str, data: Path, out: Path, *extra: str) -> int:
    return main(["traces", "--data", str(data), "--base_url", url, "--model", "teacher", "--output_dir", str(out),
                 "--max_retries", "2", "--concurrency", "3", *extra])  # fmt: skip


def stats_of(out: Path) -> dict:
    return json.loads((out / "stats.json").read_text())


def test_faithful_pairs_kept_the_rest_dropped_with_their_reason(tmp_path):
    data = write_pool(tmp_path / "d", ["good", "good", "flipped", "garble", "good", "good"])
    with OpenAIStandIn(answer=looking_teacher(), faults=[429, 503]) as server:
        assert traces(server.url, data, tmp_path / "out") == 0
    stats = stats_of(tmp_path / "out")
    assert (stats["kept"], stats["dropped_disagrees_with_label"], stats["dropped_format"]) == (4, 1, 1)
    assert stats["requests"] == {"asked": 12, "answered": 12, "failed": 0, "retries": 2, "reused_from_earlier_runs": 0}
    assert stats["tokens"]["completion"] > 0 and stats["settings"]["reveal_label"] is False
    assert len(server.requests) == 14 and all(len(attached_images(b)) == 1 for b in server.requests)
    assert not any("annotator" in user_text(b) for b in server.requests)  # the label is not told
    dropped = {d["id"]: d["reason"] for d in map(json.loads, (tmp_path / "out/dropped.jsonl").read_text().splitlines())}
    assert dropped == {"p2": "disagrees_with_label", "p3": "format"}

    kept = read_pairs(tmp_path / "out/traces.jsonl")
    assert [p.id for p in kept] == ["p0", "p1", "p4", "p5"]
    for pair in kept:
        stored, swapped = pair.meta["traces"]
        assert original_choice(parse_verdict(stored).choice, False) == pair.preferred
        assert original_choice(parse_verdict(swapped).choice, True) == pair.preferred
        assert (tmp_path / "out" / pair.images[0]).is_file()  # images beside traces.jsonl
    examples, sft_stats = select_traces(kept, "both", seed=0, fidelity_filter=True)
    assert len(examples) == 8 and sft_stats.dropped_fidelity == sft_stats.dropped_unparsable == 0


def test_a_failed_request_is_asked_again_on_rerun_and_nothing_else(tmp_path):
    data = write_pool(tmp_path / "d", ["good"] * 5)
    down_for_p3 = lambda body: 500 if "square 3?" in user_text(body) else None  # noqa: E731
    with OpenAIStandIn(answer=looking_teacher(), status_for=down_for_p3) as server:
        assert traces(server.url, data, tmp_path / "out", "--max_retries", "1") == 0
    first = stats_of(tmp_path / "out")
    assert first["kept"] == 4 and first["unfinished_request_failed"] == 1
    assert first["requests"]["failed"] == 2 and first["requests"]["retries"] == 2
    with OpenAIStandIn(answer=looking_teacher()) as server:
        assert traces(server.url, data, tmp_path / "out") == 0
    second = stats_of(tmp_path / "out")
    assert len(server.requests) == 2 and all("square 3?" in user_text(b) for b in server.requests)
    assert second["kept"] == 5 and second["requests"]["reused_from_earlier_runs"] == 8
    assert second["tokens"]["prompt"] > first["tokens"]["prompt"]  # every answer paid for, over both runs


def test_samples_ask_again_only_where_the_first_answer_was_not_faithful(tmp_path):
    data = write_pool(tmp_path / "d", ["good", "shaky", "good", "shaky"])
    with OpenAIStandIn(answer=looking_teacher()) as server:
        assert traces(server.url, data, tmp_path / "one") == 0
    assert stats_of(tmp_path / "one")["dropped_disagrees_with_label"] == 2
    with OpenAIStandIn(answer=looking_teacher()) as server:
        assert traces(server.url, data, tmp_path / "two", "--samples", "2", "--temperature", "0.7") == 0
    stats = stats_of(tmp_path / "two")
    assert stats["kept"] == 4 and stats["samples_used_per_kept_trace"] == {"1": 4, "2": 4}
    assert stats["requests"]["asked"] == len(server.requests) == 8 + 4
    assert all(isinstance(b["seed"], int) and b["temperature"] == 0.7 for b in server.requests)
    with OpenAIStandIn(answer=looking_teacher()) as server:  # more samples allowed: nothing is missing
        assert traces(server.url, data, tmp_path / "two", "--samples", "3", "--temperature", "0.7") == 0
    assert server.requests == [] and stats_of(tmp_path / "two")["kept"] == 4


@pytest.mark.parametrize("order", ["stored", "random"])
def test_one_order_per_pair_leaves_the_other_null_and_sft_reads_it(tmp_path, order):
    data = write_pool(tmp_path / "d", ["good"] * 6)
    with OpenAIStandIn(answer=looking_teacher()) as server:
        assert traces(server.url, data, tmp_path / "out", "--order", order, "--seed", "1") == 0
    assert len(server.requests) == 6
    kept = read_pairs(tmp_path / "out/traces.jsonl")
    nulls = [p.meta["traces"].index(None) for p in kept]
    assert nulls == [1] * 6 if order == "stored" else 0 < sum(nulls) < 6
    examples, _ = select_traces(kept, order, seed=1, fidelity_filter=True)
    assert [swapped for _, swapped, _ in examples] == [1 - n for n in nulls]


def test_reveal_label_tells_the_teacher_and_is_recorded(tmp_path):
    data = write_pool(tmp_path / "d", ["flipped", "good"])
    with OpenAIStandIn(answer=looking_teacher()) as server:
        assert traces(server.url, data, tmp_path / "out", "--reveal_label", "true", "--order", "stored") == 0
    hints = [re.search(r"judged Response (\d)", user_text(b)).group(1) for b in server.requests]
    labels = {p.id: p.preferred for p in read_pairs(data)}
    assert sorted(hints) == sorted(str(1 + v) for v in labels.values())
    assert stats_of(tmp_path / "out")["settings"]["reveal_label"] is True


def test_a_killed_run_loses_no_answer_and_the_rerun_asks_only_the_rest(tmp_path):
    data = write_pool(tmp_path / "d", ["good"] * 8)
    slow = looking_teacher()
    with OpenAIStandIn(answer=lambda body: (time.sleep(0.15), slow(body))[1]) as server:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        argv = [sys.executable, "-m", "egt.cli", "traces", "--data", str(data), "--base_url", server.url,
                "--model", "teacher", "--output_dir", str(tmp_path / "out"), "--concurrency", "1"]  # fmt: skip
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        store = tmp_path / "out" / "requests.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not store.is_file() or len(store.read_text().splitlines()) < 5):
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    answered = len(store.read_text().splitlines()) - 1  # the header line
    assert 4 <= answered < 16 and not (tmp_path / "out" / "traces.jsonl").exists()
    with OpenAIStandIn(answer=looking_teacher()) as server:
        assert traces(server.url, data, tmp_path / "out") == 0
    stats = stats_of(tmp_path / "out")
    assert len(server.requests) == stats["requests"]["asked"] == 16 - answered
    assert stats["requests"]["reused_from_earlier_runs"] == answered and stats["kept"] == 8


@pytest.mark.parametrize(
    "extra, status, needle",
    [
        ([], 401, "HTTP 401 .*API key"),
        ([], 404, "no model 'teacher' there"),
        (["--samples", "2"], None, "--samples 2: a greedy teacher"),
        (["--order", "sideways"], None, "--order"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, capsys, extra, status, needle):
    data = write_pool(tmp_path / "d", ["good", "good"])
    with OpenAIStandIn(answer=looking_teacher(), status_for=lambda body: status) as server:
        assert traces(server.url, data, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(needle, err) and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()  # not even the resumable store of a run that got no answer


@pytest.mark.parametrize("image, needle", [("img/none.png", "image file.* missing"), ("../x.png", "escapes")])
def test_bad_images_are_refused_before_any_request(tmp_path, capsys, image, needle):
    data = write_pool(tmp_path / "d", ["good", "good"])
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    rows[1]["images"] = [image]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with OpenAIStandIn(answer=looking_teacher()) as server:
        assert traces(server.url, data, tmp_path / "out") == 2
    assert server.requests == [] and re.search(needle, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_an_endpoint_model_name_without_base_url_says_so(tmp_path, capsys):
    data = write_pool(tmp_path / "d", ["good"])
    assert main(["traces", "--data", str(data), "--model", "gpt-4o", "--output_dir", str(tmp_path / "out")]) == 2
    assert "pass --base_url" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_other_teacher_settings_are_refused_unless_overwrite(tmp_path, capsys):
    data = write_pool(tmp_path / "d", ["good", "good"])
    with OpenAIStandIn(answer=looking_teacher()) as server:
        assert traces(server.url, data, tmp_path / "out") == 0
        assert traces(server.url, data, tmp_path / "out", "--prompt_style", "compact") == 2
        assert "other settings (prompt_style)" in capsys.readouterr().err
        assert traces(server.url, data, tmp_path / "out", "--prompt_style", "compact", "--overwrite", "true") == 0
    assert len(server.requests) == 8 and stats_of(tmp_path / "out")["requests"]["reused_from_earlier_runs"] == 0


def test_local_checkpoint_teacher_on_the_tiny_judge(tmp_path, small_lab, tiny_judge_dir):
    argv = ["traces", "--model", str(tiny_judge_dir), "--data", str(small_lab / "test.jsonl"), "--limit", "3"]
    argv += ["--max_tokens", "8", "--device", "cpu", "--prompt_style", "compact", "--output_dir", str(tmp_path)]
    assert main(argv) == 0
    stats = stats_of(tmp_path)
    assert stats["teacher"] == f"local:{tiny_judge_dir}" and stats["requests"]["answered"] == 6
    assert stats["kept"] + stats["dropped_disagrees_with_label"] + stats["dropped_format"] == 3
    assert stats["tokens"]["completion"] > 0
    assert main(argv) == 0 and stats_of(tmp_path)["requests"]["asked"] == 0  # resumed: nothing asked twice
