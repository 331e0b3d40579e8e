"""Data mixing: spec parsing, reproducibility under a seed, per-source counts, formats, bad input."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from egt.errors import EgtError
from egt.rm.sources import mix_sources, parse_source, planned_counts, sample_indices
from real_data import shared_data


def test_parse_source_strings_and_mappings():
    s = parse_source("data/a.jsonl,name=lab,weight=0.5")
    assert (s.path, s.name, s.weight, s.n) == ("data/a.jsonl", "lab", 0.5, None)
    assert parse_source("x/hh.jsonl.gz").name == "hh"
    hf = parse_source({"path": "hf:org/prefs", "split": "test", "n": 5})
    assert hf.is_hf and hf.name == "org/prefs" and hf.n == 5 and hf.split == "test"
    for bad, why in [
        ("a.jsonl,weight", "expected key=value after the path, got 'weight'"),
        ("a.jsonl,colour=red", r"unknown keys \['colour'\]"),
        ("a.jsonl,n=2,weight=1", "give n or weight, not both"),
        ("a.jsonl,n=-1", "n and weight must be ≥ 0"),
        ("a.jsonl,n=x", "'x'"),
        ("a.jsonl,format=csv", r"unknown format 'csv' \(one of auto, pairs"),
        ("", r"expected 'PATH\[,key=value...\]'"),
    ]:
        with pytest.raises(EgtError, match=rf"^source {re.escape(repr(bad))}: .*{why}"):
            parse_source(bad)


def test_planned_counts_and_sampling():
    specs = [parse_source("a,n=5"), parse_source("b,weight=2"), parse_source("c")]
    assert planned_counts(specs, [10, 10, 10]) == [5, 20, 10]
    assert planned_counts(specs, [10, 10, 10], mix_size=30) == [5, 20, 10]  # shares 2:1 of 30
    idx = sample_indices(__import__("numpy").random.default_rng(0), 4, 10)
    assert sorted(Counter(idx.tolist()).values()) == [2, 2, 3, 3]  # two whole passes + 2 distinct extras


def test_mix_is_reproducible_and_counts_per_source(lab, text_pairs_file):
    sources = [f"{lab / 'sft.jsonl'},name=lab,n=10", f"{text_pairs_file},name=text,weight=2"]
    a = mix_sources(sources, seed=1)
    b = mix_sources(sources, seed=1)
    c = mix_sources(sources, seed=2)
    ids = lambda mix: [(e.source, e.pair.id) for e in mix.examples]  # noqa: E731
    assert ids(a) == ids(b) and ids(a) != ids(c)
    assert Counter(e.source for e in a.examples) == {"lab": 10, "text": 24}
    rows = {r["name"]: r for r in a.report["sources"]}
    assert (rows["lab"]["available"], rows["lab"]["taken"], rows["lab"]["unique"]) == (24, 10, 10)
    assert (rows["text"]["available"], rows["text"]["taken"], rows["text"]["unique"]) == (12, 24, 12)
    assert rows["lab"]["with_images"] == 10 and rows["text"]["with_images"] == 0
    assert a.report["total"] == 34 and a.report["seed"] == 1
    assert all(e.images_root == str(lab) for e in a.examples if e.source == "lab")


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_identical_responses_error_or_counted_skip(tmp_path):
    rows = [
        {"id": "a", "question": "q", "responses": ["x", "y"], "preferred": 0},
        {"id": "b", "question": "q", "responses": ["same", "same "], "preferred": 0},
    ]
    path = _write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(EgtError, match=r"source 'mine'.*line 2.*id='b'.*identical"):
        mix_sources([f"{path},name=mine"])
    mix = mix_sources([f"{path},name=mine"], skip_bad=True)
    assert mix.report["sources"][0]["skipped"] == {"identical_responses": 1} and len(mix.examples) == 1


def test_undecodable_image_error_or_counted_skip(tmp_path, lab):
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    good = json.loads((lab / "sft.jsonl").read_text().splitlines()[0])
    (tmp_path / "images").mkdir()
    (tmp_path / good["images"][0]).write_bytes((lab / good["images"][0]).read_bytes())
    rows = [good, {"id": "pic", "question": "q", "images": ["broken.png"], "responses": ["a", "b"], "preferred": 1}]
    path = _write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(EgtError, match=r"source 'd'.*line 2.*pic.*cannot decode image"):
        mix_sources([str(path)])
    mix = mix_sources([str(path)], skip_bad=True)
    assert mix.report["sources"][0]["skipped"] == {"bad_image": 1}


def test_unreadable_sources_name_the_source(tmp_path):
    with pytest.raises(EgtError, match=r"source 'nothere'.*no such file"):
        mix_sources([str(tmp_path / "nothere.jsonl")])
    (tmp_path / "bad.jsonl").write_text('{"id": 1,\n')
    with pytest.raises(EgtError, match=r"source 'bad'.*line 1.*malformed JSON"):
        mix_sources([str(tmp_path / "bad.jsonl")], skip_bad=True)
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(EgtError, match=r"source 'x'.*unknown format"):
        mix_sources([str(tmp_path / "x.csv")])
    with pytest.raises(EgtError, match=r"source 'no/such'.*cannot load the HF dataset"):
        mix_sources(["hf:no/such"])
    with pytest.raises(EgtError, match="names must be unique"):
        mix_sources([str(tmp_path / "bad.jsonl"), str(tmp_path / "bad.jsonl")])


def test_hh_rlhf_and_preference_formats(tmp_path):
    hh = [
        {
            "chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help?\n\nAssistant: Sure, here.",
            "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help?\n\nAssistant: No.",
        },
        {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: DIFFERENT\n\nAssistant: c"},
    ]
    with gzip.open(tmp_path / "hh.jsonl.gz", "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in hh))
    with pytest.raises(EgtError, match="different prompts"):
        mix_sources([str(tmp_path / "hh.jsonl.gz")])
    mix = mix_sources([str(tmp_path / "hh.jsonl.gz")], skip_bad=True)
    (pair,) = [e.pair for e in mix.examples]
    assert pair.question == "Human: hi\n\nAssistant: hello\n\nHuman: help?"
    assert pair.responses == ("Sure, here.", "No.") and pair.preferred == 0 and pair.id == "hh-0"
    assert mix.report["sources"][0]["skipped"] == {"malformed": 1}
    pref = _write_jsonl(tmp_path / "pref.jsonl", [{"prompt": "p", "chosen": "good", "rejected": "bad"}])
    (pair,) = [e.pair for e in mix_sources([str(pref)]).examples]
    assert (pair.question, pair.responses, pair.preferred) == ("p", ("good", "bad"), 0)


def test_hf_dataset_source(tmp_path):
    folder = tmp_path / "hfdata"
    folder.mkdir()
    _write_jsonl(folder / "train.jsonl", [{"prompt": f"p{i}", "chosen": "yes", "rejected": "no"} for i in range(5)])
    mix = mix_sources([f"hf:{folder},name=hf,n=3"], seed=0)
    assert len(mix.examples) == 3 and {e.pair.question for e in mix.examples} <= {f"p{i}" for i in range(5)}


def test_real_hh_rlhf_file_reads():
    path = shared_data("hh_rlhf", "harmless-base_test.jsonl.gz")
    mix = mix_sources([f"{path},n=50"], seed=0, skip_bad=True)
    assert len(mix.examples) == 50 and mix.report["sources"][0]["available"] >= 2300
