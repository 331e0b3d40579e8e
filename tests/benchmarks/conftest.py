"""Small fixtures in each benchmark's real release format, a scripted judge, the tiny judge.

Every fixture holds the tricky cases its benchmark has: VL-RewardBench is the release-shaped rows of
``releases.py``; correctness and preference rows, the
math/coding, bias/toxicity splits (Multimodal RewardBench); repeated question ids and a video
frame folder (MM-RLHF-RewardBench); subsets of every section, one outside them (RewardBench).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from egt.evaluation.runner import Prediction
from egt.judge.base import OK, PARSE_FAILURE, TIE, Judgement, JudgeRequest
from egt.records import PreferencePair

os.environ.setdefault("EGT_PROGRESS", "0")

REPO = Path(__file__).resolve().parents[2]
MM_RLHF_REAL = ("mm_rlhf_rewardbench", "mm_reward_bench.jsonl")  # under ../shared/data: real_data.shared_data


def png_bytes(rgb=(200, 30, 30), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (56, 56), rgb).save(buf, format=fmt)
    return buf.getvalue()


def write_image(path: Path, rgb=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(rgb, "JPEG" if path.suffix == ".jpg" else "PNG"))
    return path


def write_jsonl(path: Path, rows: Sequence[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# VL-RewardBench: the release-shaped rows of releases.py (subset image folders, real id shapes, a
# repeated WildVision id, a winner stored second, reasoning rows without query_source)


def vl_records() -> list[dict]:
    from .releases import VL_ROWS

    return [json.loads(json.dumps(r)) for r in VL_ROWS]


@pytest.fixture
def vl_jsonl(tmp_path) -> Path:
    """``data/data.jsonl`` of the GitHub release, every image present under ``data/images/<subset>/``."""
    from .releases import write_vl_release

    return write_vl_release(tmp_path / "vl")


@pytest.fixture
def vl_parquet(tmp_path) -> Path:
    """The HF release's layout: one parquet file, ``image`` an embedded ``{bytes, path}`` cell."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for i, rec in enumerate(vl_records()):
        name = rec.pop("image_path").rsplit("/", 1)[-1]
        rec["image"] = {"bytes": png_bytes((30 * i, 100, 200)), "path": name}
        rows.append(rec)
    path = tmp_path / "vl_hf" / "data" / "test-00000-of-00001.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


# --------------------------------------------------------------------------------------------
# Multimodal RewardBench: all_data.json, a JSON list, ``Category`` on every record (as released)

MMRB_ROWS = [
    ("nocaps_13062", "open_generation/correctness_task", "Output2"),
    ("visitbench_235", "open_generation/correctness_task", "Output2"),  # as outputs/example.jsonl
    ("mmmu-s_10", "knowledge", "Output1"),
    ("mathvista_5", "reasoning", "Output2"),
    ("EMMA-Coding_3", "reasoning", "Output1"),
    ("PAIRS_occupation_1", "safety", "Output1"),
    ("hateful_memes_12", "safety", "Output2"),
    ("RealworldQA_8", "vqa", "Output1"),
    ("nocaps_4500", "open_generation/preference_task", "Output1"),
]


def mmrb_records() -> list[dict]:
    out = []
    for i, (rid, cat, better) in enumerate(MMRB_ROWS):
        rec = {
            "ID": rid,
            "Text": f"Question {i}?",
            "Image": f"images/{rid.split('_')[0]}/{i}.jpg",
            "Output1": f"first answer {i}",
            "Output2": f"the second answer {i}!",
            "Better": better,
        }
        rec["Category"] = cat
        out.append(rec)
    return out


@pytest.fixture
def mmrb_json(tmp_path) -> Path:
    root = tmp_path / "mmrb" / "data"
    for rec in mmrb_records():
        write_image(root / rec["Image"], (120, 60, 30))
    path = root / "all_data.json"
    path.write_text(json.dumps(mmrb_records(), indent=2), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# MM-RLHF-RewardBench: 9 pairs over 5 question ids, one a video frame folder

MM_RLHF_ROWS = [
    ("aaa_1", "image", "mcq/a.png"),
    ("aaa_1", "image", "mcq/a.png"),
    ("aaa_1", "image", "mcq/a.png"),
    ("bbb_2", "image", "long/b.png"),
    ("bbb_2", "image", "long/b.png"),
    ("ccc_3", "video", "video/ccc_3"),
    ("ccc_3", "video", "video/ccc_3"),
    ("ddd_4", "image", "safety/d.png"),
    ("eee_5", "image", "short/e.png"),
]
FRAMES = ("frame_10.jpg", "frame_2.jpg", "frame_1.jpg")


def mm_rlhf_records() -> list[dict]:
    return [
        {
            "id": qid,
            kind: media,
            "prompt": f"Prompt of {qid}",
            "chosen": f"a good answer #{k}",
            "rejected": f"bad {k}",
            "chosen_reason": "correct",
            "rejected_reason": "wrong",
        }
        for k, (qid, kind, media) in enumerate(MM_RLHF_ROWS)
    ]


@pytest.fixture
def mm_rlhf_jsonl(tmp_path) -> Path:
    root = tmp_path / "mmrlhf"
    for _qid, kind, media in MM_RLHF_ROWS:
        if kind == "image":
            write_image(root / media)
    for name in FRAMES:
        write_image(root / "video" / "ccc_3" / name, (10, 200, 10))
    (root / "video" / "ccc_3" / "notes.txt").write_text("not a frame")
    return write_jsonl(root / "mm_reward_bench.jsonl", mm_rlhf_records())


# --------------------------------------------------------------------------------------------
# RewardBench: subsets of all four sections plus one outside them

RB_ROWS = [
    ("alpacaeval-easy", 2),
    ("mt-bench-med", 2),
    ("llmbar-natural", 2),
    ("xstest-should-refuse", 1),
    ("xstest-should-respond", 1),
    ("math-prm", 2),
    ("hep-python", 1),
    ("anthropic_helpful", 1),
]


def rb_records() -> list[dict]:
    out, i = [], 0
    for subset, n in RB_ROWS:
        for _ in range(n):
            out.append(
                {
                    "prompt": f"prompt {i}",
                    "chosen": f"chosen answer {i}",
                    "chosen_model": "gpt-4",
                    "rejected": f"rejected {i}",
                    "rejected_model": "llama",
                    "subset": subset,
                    "id": 1000 + i,
                }
            )
            i += 1
    return out


@pytest.fixture
def rb_jsonl(tmp_path) -> Path:
    return write_jsonl(tmp_path / "rb" / "filtered.jsonl", rb_records())


# --------------------------------------------------------------------------------------------
# predictions by outcome, and a judge that plays a script


def outcome_choice(pair: PreferencePair, swapped: bool, outcome: str) -> Judgement:
    """A judgement in presented order: right / wrong / tie / fail (an unparsable output)."""
    if outcome == "tie":
        return Judgement(choice=None, status=TIE)
    if outcome == "fail":
        return Judgement(choice=None, status=PARSE_FAILURE, text="no verdict")
    stored = pair.preferred if outcome == "right" else 1 - pair.preferred
    return Judgement(choice=1 - stored if swapped else stored, status=OK)


def prediction(pair: PreferencePair, outcome: str, swapped: bool = False) -> Prediction:
    """The prediction a judge with this outcome leaves (stored indices)."""
    j = outcome_choice(pair, swapped, outcome)
    predicted = None if j.choice is None else (1 - j.choice if swapped else j.choice)
    return Prediction(
        id=pair.id,
        swapped=swapped,
        status=j.status,
        predicted=predicted,
        preferred=pair.preferred,
        category=pair.category,
        text=j.text,
    )


class ScriptedJudge:
    """Plays ``script[(id, swapped)]`` (right / wrong / tie / fail); anything unscripted is right."""

    name = "scripted"
    reads_images = False

    def __init__(self, script: dict[tuple[str, bool], str]):
        self.script = script

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        return [outcome_choice(r.pair, r.swapped, self.script.get((r.pair.id, r.swapped), "right")) for r in requests]


@pytest.fixture(scope="session")
def bench_judge_dir(tmp_path_factory) -> Path:
    """An untrained tiny Qwen2.5-VL judge (mostly parse failures: it exercises the generative path)."""
    from egt.models.tiny import build_tiny_judge

    corpus = [
        f"<think>Response {i} names the colour.</think><answer>{1 + i % 2}</answer> Question: which "
        "response is better? Response 1: a red square. Response 2: a blue circle."
        for i in range(40)
    ]
    out = tmp_path_factory.mktemp("tiny") / "judge"
    build_tiny_judge(corpus, out)
    (out / "egt_judge.json").write_text(json.dumps({"prompt_style": "compact", "max_new_tokens": 4}))
    return out
