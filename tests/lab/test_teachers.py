"""The lab's two trace teachers and the one confusion model shared by annotator and teacher."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from egt.errors import EgtError
from egt.judge.base import original_choice
from egt.judge.parse import parse_verdict
from egt.lab import LabConfig, make_lab, make_split
from egt.lab.items import confusion_probability, sample_item
from egt.records import read_pairs
from egt.train.sft import select_traces

# What the lab code before the annotator teacher (commit c3be253) wrote for this config: the three
# JSONL files byte for byte, the images' pixels (PNG bytes depend on the zlib build), and lab.json,
# which now also records ``"teacher": "scripted"`` in its config.
PINNED_CONFIG = dict(seed=7, n_sft=24, n_rl_pool=12, n_test=8)
PINNED_JSONL = "6b3166a25ac67bde9e8fd2fec18bb7b6bd31fec1bc0f5abb0ae2a5bfffdb75ab"
PINNED_PIXELS = "947baa70c7072ded7c1b4e408b49f2db031d58ea49fc4eaba54648fac5de65cd"
PINNED_LAB_JSON = "1df15ca89f8a0b6b3a9be37018e983c91e2c1f2ab3ec0323a102765ef0464c79"

NOISE = dict(noise_easy=0.05, noise_hard=0.30, teacher_error_hard=0.3)


def test_confusion_probability_at_known_ambiguities():
    # flat at easy up to 0.4, linear to hard at 0.9, flat after: easy + (hard − easy)·(a − 0.4)/0.5
    for a, p in [
        (0.0, 0.05),
        (0.2, 0.05),
        (0.4, 0.05),
        (0.5, 0.10),
        (0.65, 0.175),
        (0.8, 0.25),
        (0.9, 0.30),
        (0.92, 0.30),
        (1.0, 0.30),
    ]:
        assert confusion_probability(a, 0.05, 0.30) == pytest.approx(p, abs=1e-12), a
    assert confusion_probability(0.65, 0.0, 1.0) == pytest.approx(0.5)
    assert confusion_probability(0.3, 0.1, 0.1) == pytest.approx(0.1)


def test_default_lab_is_unchanged(tmp_path):
    """Same seed → the files the lab wrote before it had a choice of teacher."""
    out = tmp_path / "lab"
    make_lab(LabConfig(output_dir=str(out), **PINNED_CONFIG))
    h = hashlib.sha256()
    for name in ("sft.jsonl", "rl_pool.jsonl", "test.jsonl"):
        h.update((out / name).read_bytes())
    assert h.hexdigest() == PINNED_JSONL
    h = hashlib.sha256()
    for f in sorted((out / "images").iterdir()):
        h.update(f.name.encode())
        h.update(np.asarray(Image.open(f).convert("RGB")).tobytes())
    assert h.hexdigest() == PINNED_PIXELS
    lab = json.loads((out / "lab.json").read_text(encoding="utf-8"))
    assert lab["config"].pop("teacher") == "scripted"
    before = json.dumps(lab, indent=2, ensure_ascii=False) + "\n"
    assert hashlib.sha256(before.encode()).hexdigest() == PINNED_LAB_JSON
    assert "teacher_colour" not in read_pairs(out / "sft.jsonl")[0].meta


def test_annotator_teacher_changes_only_the_traces(tmp_path):
    kw = dict(seed=5, n_sft=40, n_rl_pool=10, n_test=5)
    make_lab(LabConfig(output_dir=str(tmp_path / "s"), **kw))
    make_lab(LabConfig(output_dir=str(tmp_path / "a"), teacher="annotator", **kw))
    for name in ("rl_pool.jsonl", "test.jsonl"):
        assert (tmp_path / "s" / name).read_bytes() == (tmp_path / "a" / name).read_bytes()
    for f in (tmp_path / "s" / "images").iterdir():
        assert f.read_bytes() == (tmp_path / "a" / "images" / f.name).read_bytes()
    scripted, annotator = read_pairs(tmp_path / "s" / "sft.jsonl"), read_pairs(tmp_path / "a" / "sft.jsonl")
    for s, a in zip(scripted, annotator, strict=True):
        assert (s.question, s.responses, s.preferred) == (a.question, a.responses, a.preferred)
        meta = dict(a.meta)
        seen, erred = meta.pop("teacher_colour"), meta.pop("teacher_erred")
        assert erred == (seen != a.meta["colour"])
        assert all(f"image {seen}," in t for t in a.meta["traces"])  # it reasons from what it saw
        assert {k: v for k, v in meta.items() if k != "traces"} == {k: v for k, v in s.meta.items() if k != "traces"}
    summary = json.loads((tmp_path / "a" / "lab.json").read_text(encoding="utf-8"))
    assert summary["config"]["teacher"] == "annotator" and "teacher_error_rate" in summary["splits"]["sft"]


def test_unknown_teacher_is_refused(tmp_path):
    with pytest.raises(EgtError, match="teacher"):
        make_lab(LabConfig(output_dir=str(tmp_path / "x"), teacher="oracle", n_sft=1, n_rl_pool=1, n_test=1))
    with pytest.raises(ValueError, match="teacher_rng"):
        sample_item(np.random.default_rng(0), apply_noise=True, teacher="annotator", **NOISE)


def _teacher_errors(teacher: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(ambiguity, teacher misperceived) for ``n`` sft items, drawn as ``make_split`` draws them."""
    amb, err = np.empty(n), np.empty(n, dtype=bool)
    for i in range(n):
        spec = sample_item(
            np.random.default_rng([0, 0, i]),
            apply_noise=True,
            teacher=teacher,
            teacher_rng=np.random.default_rng([0, 0, i, 1]),
            **NOISE,
        )
        amb[i], err[i] = spec.ambiguity, spec.teacher_colour != spec.correct
    return amb, err


def test_annotator_teacher_errs_like_the_annotators():
    amb, err = _teacher_errors("annotator", 4000)
    for lo, hi in [(0.0, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0)]:
        in_bin = (amb >= lo) & (amb < hi)
        p = np.array([confusion_probability(a, 0.05, 0.30) for a in amb[in_bin]])
        expected, sd = p.mean(), np.sqrt((p * (1 - p)).sum()) / in_bin.sum()
        assert abs(err[in_bin].mean() - expected) < 4 * sd, (lo, hi, err[in_bin].mean(), expected)
    assert abs(err[amb < 0.4].mean() - 0.05) < 0.02  # clear items: about noise_easy
    assert err[amb >= 0.8].mean() > 0.2
    amb_s, err_s = _teacher_errors("scripted", 4000)
    assert (amb_s == amb).all() and not err_s[amb_s < 0.5].any()  # same items; scripted: never below 0.5


def test_annotator_traces_parse_after_the_fidelity_filter(tmp_path):
    cfg = LabConfig(output_dir=str(tmp_path), teacher="annotator")
    (tmp_path / "images").mkdir()
    pairs = make_split(cfg, "sft", 400, tmp_path / "images")
    kept, stats = select_traces(pairs, "both", seed=0, fidelity_filter=True)
    assert stats.dropped_unparsable == 0 and 0 < stats.dropped_fidelity < len(kept)
    for pair, swapped, trace in kept:
        v = parse_verdict(trace)
        assert v is not None and original_choice(v.choice, swapped) == pair.preferred
        assert f"image {pair.meta['teacher_colour']}," in v.reasoning
    # its verdict leaves the true label only where it misperceived the colour
    for p in pairs:
        for swapped, trace in zip((False, True), p.meta["traces"]):
            right = original_choice(parse_verdict(trace).choice, swapped) == p.meta["true_preferred"]
            assert right or p.meta["teacher_erred"]
