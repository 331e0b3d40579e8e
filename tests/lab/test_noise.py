"""The lab's noise models: the biased region's rule, its flip rates, and the paired design."""

from __future__ import annotations

import hashlib
import json

import pytest

from egt.errors import EgtError
from egt.lab import SPLITS, LabConfig, make_lab, make_split, relabel_systematic
from egt.lab.noise import in_region, systematic_labels
from egt.records import PreferencePair, read_pairs


def _digest(folder):
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f.relative_to(folder).as_posix().encode() + f.read_bytes())
    return h.hexdigest()


def test_region_rule_needs_colour_ambiguity_and_a_neighbour_flaw():
    region = dict(flaw="neighbour", colour="red", ambiguity=0.5)
    colours = ("red", "yellow", "blue")
    assert in_region(region, colours, 0.5)  # the boundary ambiguity is inside
    assert not in_region({**region, "ambiguity": 0.4999}, colours, 0.5)
    assert not in_region({**region, "flaw": "distant"}, colours, 0.5)  # the flaw must name the neighbour
    assert not in_region({**region, "colour": "orange"}, colours, 0.5)  # not a biased colour
    assert in_region({**region, "colour": "orange"}, ("orange",), 0.5)


def _pair(i: int, region: bool) -> PreferencePair:
    meta = dict(true_preferred=i % 2, flipped=False, flaw="neighbour", colour="red", ambiguity=0.8 if region else 0.1)
    return PreferencePair(id=f"p{i}", question="q", responses=("a", "b"), preferred=i % 2, meta=meta)


def test_systematic_flips_follow_the_region_and_keep_the_truth():
    pairs = [_pair(i, region=i < 2000) for i in range(4000)]
    out = systematic_labels(pairs, seed=0, split_key=1, region_flip=0.9, base_flip=0.06)
    inside = [p.meta["flipped"] for p in out[:2000]]
    outside = [p.meta["flipped"] for p in out[2000:]]
    # binomial standard errors: sqrt(.9·.1/2000) = 0.0067, sqrt(.06·.94/2000) = 0.0053; 4 SE tolerance
    assert abs(sum(inside) / 2000 - 0.9) < 0.027 and abs(sum(outside) / 2000 - 0.06) < 0.022
    for before, after in zip(pairs, out, strict=True):
        assert after.meta["true_preferred"] == before.meta["true_preferred"]
        assert after.preferred == (1 - after.meta["true_preferred"] if after.meta["flipped"] else before.preferred)
        assert after.meta["region"] == (int(before.id[1:]) < 2000) and after.responses == before.responses
    assert systematic_labels(pairs, seed=0, split_key=1) == systematic_labels(pairs, seed=0, split_key=1)
    assert systematic_labels(pairs, seed=1, split_key=1) != systematic_labels(pairs, seed=0, split_key=1)


def test_systematic_pool_on_a_large_draw(tmp_path):
    """The default region is ~8% of the pool (pilot: 7.9%) and the overall flip rate ~12.5%."""
    cfg = LabConfig(output_dir=str(tmp_path), noise="systematic")
    (tmp_path / "images").mkdir()
    pool = relabel_systematic(cfg, make_split(cfg, "rl_pool", 3000, tmp_path / "images"))
    region = [p for p in pool if p.meta["region"]]
    # P(region) = P(neighbour flaw ≈ 0.4) · P(a ≥ 0.5 | a ~ U[0, 0.92]) = 0.457 · P(3 of 6 colours) = 0.5
    assert 0.06 < len(region) / len(pool) < 0.11
    assert sum(p.meta["flipped"] for p in region) / len(region) > 0.83
    rest = [p for p in pool if not p.meta["region"]]
    assert 0.045 < sum(p.meta["flipped"] for p in rest) / len(rest) < 0.075
    assert 0.10 < sum(p.meta["flipped"] for p in pool) / len(pool) < 0.15  # the random model: ~12.7%


def test_noise_models_are_paired(tmp_path):
    """Same images, ids, items and true labels; the random lab is the one it always was."""
    kw = dict(seed=5, n_sft=10, n_rl_pool=40, n_test=10)
    a = make_lab(LabConfig(output_dir=str(tmp_path / "random"), **kw))
    b = make_lab(LabConfig(output_dir=str(tmp_path / "systematic"), noise="systematic", **kw))
    assert _digest(tmp_path / "random" / "images") == _digest(tmp_path / "systematic" / "images")
    for split in ("sft", "test"):
        assert (tmp_path / "random" / f"{split}.jsonl").read_bytes() == (
            tmp_path / "systematic" / f"{split}.jsonl"
        ).read_bytes()
    rand, syst = (read_pairs(tmp_path / n / "rl_pool.jsonl") for n in ("random", "systematic"))
    assert [p.id for p in rand] == [p.id for p in syst]
    for r, s in zip(rand, syst, strict=True):
        assert (r.question, r.responses, r.images) == (s.question, s.responses, s.images)
        assert r.meta["true_preferred"] == s.meta["true_preferred"] and "region" in s.meta
        assert "region" not in r.meta  # the random lab's files carry nothing new
    assert "noise" not in json.loads((tmp_path / "random" / "lab.json").read_text())["config"]
    assert b["config"]["noise"] == "systematic" and "region_share" in b["splits"]["rl_pool"]
    assert "region_share" not in a["splits"]["rl_pool"] and SPLITS.index("rl_pool") == 1


def test_unknown_noise_model_is_refused(tmp_path):
    with pytest.raises(EgtError, match="noise"):
        make_lab(LabConfig(output_dir=str(tmp_path), noise="adversarial", n_sft=1, n_rl_pool=1, n_test=1))
    with pytest.raises(EgtError, match="region colours"):
        make_lab(LabConfig(output_dir=str(tmp_path), noise="systematic", region_colours="teal"))
