"""Ensembles: z-normalisation by hand, text-only routing, save / load, as a judge in the harness."""

from __future__ import annotations

import math

import pytest

from egt.errors import EgtError
from egt.evaluation import evaluate
from egt.judge.base import JudgeRequest
from egt.records import PreferencePair
from egt.rm.collate import ScoreItem
from egt.rm.ensemble import MemberStats, RewardEnsemble, ensemble_scores, fit_normalisation, z_normalise
from egt.rm.model import HeadConfig, RewardModel
from egt.rm.scoring import RewardModelJudge


def test_fit_normalisation_by_hand():
    """rewards 1, 2, 3, 6: mean 3, population variance (4 + 1 + 0 + 9) / 4 = 3.5."""
    mean, std = fit_normalisation([1.0, 2.0, 3.0, 6.0])
    assert mean == pytest.approx(3.0) and std == pytest.approx(math.sqrt(3.5))
    with pytest.raises(EgtError, match="same reward"):
        fit_normalisation([0.5, 0.5, 0.5])


def test_ensemble_is_the_mean_of_z_scores_by_hand():
    """Member A (μ=1, σ=2) gives 3 and −1 → z = 1, −1; member B (μ=10, σ=0.5) gives 10 and 11 → z = 0, 2.
    Ensemble = (1 + 0)/2 = 0.5 and (−1 + 2)/2 = 0.5."""
    stats = [MemberStats("a", 1.0, 2.0), MemberStats("b", 10.0, 0.5)]
    assert z_normalise([3.0, -1.0], 1.0, 2.0) == [1.0, -1.0]
    assert ensemble_scores([[3.0, -1.0], [10.0, 11.0]], stats) == [0.5, 0.5]


class FakeMember:
    """A judge-like member whose reward is a fixed function of the response text."""

    def __init__(self, name, fn, reads_images=True):
        self.name, self.fn, self.reads_images, self.path = name, fn, reads_images, name
        self.seen: list[ScoreItem] = []

    def score(self, items):
        self.seen += list(items)
        return [self.fn(it) for it in items]


def test_text_only_inputs_route_to_the_text_member():
    image_member = FakeMember("vl", lambda it: float(len(it.response)))
    text_member = FakeMember("text", lambda it: 100.0 * len(it.response), reads_images=False)
    ens = RewardEnsemble([image_member], [MemberStats("vl", 2.0, 1.0)], text_member, MemberStats("text", 100.0, 50.0))
    items = [ScoreItem("q", "abc", ["<img>"]), ScoreItem("q", "abcd"), ScoreItem("q", "a", ["<img>"])]
    # with image: (len − 2) / 1; text-only: (100·len − 100) / 50
    assert ens.score(items) == [1.0, 6.0, -1.0]
    assert [it.response for it in image_member.seen] == ["abc", "a"]
    assert [it.response for it in text_member.seen] == ["abcd"]
    requests = [JudgeRequest(PreferencePair("p", "q", ("abc", "a"), 0), swapped=False, images=["<img>"])]
    (j,) = ens.judge(requests)
    assert j.choice == 0 and j.scores == (1.0, -1.0)


def test_calibrate_fits_each_member():
    members = [FakeMember("a", lambda it: float(len(it.response))), FakeMember("b", lambda it: -3.0 * len(it.response))]
    items = [ScoreItem("q", "x" * n) for n in (1, 2, 3, 6)]
    ens = RewardEnsemble.calibrate(members, items)
    assert [v for s in ens.stats for v in (s.mean, s.std)] == pytest.approx(
        [3.0, math.sqrt(3.5), -9.0, 3 * math.sqrt(3.5)]
    )
    # b is a's mirror image: their z-scores cancel exactly
    assert ens.score(items) == pytest.approx([0.0] * 4)


def test_calibrate_fits_each_member_on_the_items_it_scores():
    """With a text member, image members score only items with images and the text member only the
    text-only ones, so each is calibrated on exactly those. Image items: lengths 1, 2, 3, 6 (μ = 3,
    σ = √3.5); text-only items: lengths 10, 20. On all six items the image member would get
    μ = 7, σ = √(256/6) ≈ 6.53 instead (what the old code fitted)."""
    image_member = FakeMember("vl", lambda it: float(len(it.response)))
    text_member = FakeMember("text", lambda it: 100.0 * len(it.response), reads_images=False)
    with_images = [ScoreItem("q", "x" * n, ["<img>"]) for n in (1, 2, 3, 6)]
    text_only = [ScoreItem("q", "x" * n) for n in (10, 20)]
    items = [with_images[0], text_only[0], *with_images[1:3], text_only[1], with_images[3]]
    ens = RewardEnsemble.calibrate([image_member], items, text_member)
    (stats,) = ens.stats
    assert (stats.mean, stats.std) == pytest.approx((3.0, math.sqrt(3.5)))
    assert (stats.mean, stats.std) == pytest.approx(fit_normalisation([1.0, 2.0, 3.0, 6.0]))
    assert (stats.mean, stats.std) != pytest.approx(fit_normalisation([1.0, 10.0, 2.0, 3.0, 20.0, 6.0]))
    assert [it.response for it in image_member.seen] == [it.response for it in with_images]
    assert ens.text_stats is not None
    assert (ens.text_stats.mean, ens.text_stats.std) == pytest.approx((1500.0, 500.0))
    assert [it.response for it in text_member.seen] == [it.response for it in text_only]
    # calibrated on what it scores: each side's z-scores have mean 0 and std 1 on its own items
    z = ens.score(items)
    z_images = [z[i] for i, it in enumerate(items) if it.images]
    assert z_images == pytest.approx([(n - 3.0) / math.sqrt(3.5) for n in (1, 2, 3, 6)])
    assert [z[i] for i, it in enumerate(items) if not it.images] == pytest.approx([-1.0, 1.0])


def test_calibrate_with_a_text_member_and_one_kind_of_item_falls_back_to_all_items():
    image_member = FakeMember("vl", lambda it: float(len(it.response)))
    text_member = FakeMember("text", lambda it: float(len(it.response) + len(it.images)), reads_images=False)
    items = [ScoreItem("q", "x" * n, ["<img>"]) for n in (1, 2, 3, 6)]
    ens = RewardEnsemble.calibrate([image_member], items, text_member)
    assert (ens.stats[0].mean, ens.stats[0].std) == pytest.approx((3.0, math.sqrt(3.5)))
    assert ens.text_stats is not None and ens.text_stats.mean == pytest.approx(3.0)  # images dropped
    assert all(not it.images for it in text_member.seen)


def test_saved_ensemble_scores_the_same_and_evaluates(tmp_path, lab, lab_pairs, vl_backbone, text_backbone):
    members = []
    for seed, head in ((0, "mlp"), (1, "linear")):
        model, processor = RewardModel.from_backbone(
            vl_backbone, HeadConfig(head), device="cpu", seed=seed, for_training=False
        )
        model.save_pretrained(tmp_path / f"m{seed}", processor)
        members.append(RewardModelJudge.from_pretrained(tmp_path / f"m{seed}", device="cpu"))
    text_model, tokenizer = RewardModel.from_backbone(text_backbone, device="cpu", for_training=False)
    text_model.save_pretrained(tmp_path / "text", tokenizer)
    text_member = RewardModelJudge.from_pretrained(tmp_path / "text", device="cpu")
    from egt.records import open_images

    items = [ScoreItem(p.question, r, open_images(p, lab)) for p in lab_pairs[:6] for r in p.responses]
    items += [ScoreItem(p.question, r) for p in lab_pairs[6:9] for r in p.responses]
    ens = RewardEnsemble.calibrate(members, items, text_member)
    ens.save(tmp_path / "ens")
    loaded = RewardEnsemble.load(tmp_path / "ens", device="cpu")
    assert [(s.mean, s.std) for s in loaded.stats] == [(s.mean, s.std) for s in ens.stats]
    assert loaded.score(items) == pytest.approx(ens.score(items), abs=1e-6)
    report, predictions = evaluate(loaded, lab_pairs[:4], order="both", images_root=lab)
    assert report["n_items"] == 4 and len(predictions) == 8 and all(p.scores for p in predictions)


def test_factory_builds_reward_model_and_ensemble_judges(tmp_path, vl_backbone):
    import egt.rm  # noqa: F401  (registers the judge kinds)
    from egt.judge.args import JUDGE_KINDS, JudgeArgs
    from egt.pipelines.judges import make_judge

    model, processor = RewardModel.from_backbone(vl_backbone, device="cpu", for_training=False)
    model.save_pretrained(tmp_path / "rm", processor)
    judge = make_judge(JudgeArgs(model=str(tmp_path / "rm"), device="cpu"))
    assert isinstance(judge, RewardModelJudge) and judge.reads_images
    RewardEnsemble([judge], [MemberStats(str(tmp_path / "rm"), 0.0, 1.0)]).save(tmp_path / "ens")
    assert isinstance(make_judge(JudgeArgs(model=str(tmp_path / "ens"), device="cpu")), RewardEnsemble)
    markers = [m for m, _ in JUDGE_KINDS]
    assert markers.count("egt_reward.json") == 1 and markers.count("egt_ensemble.json") == 1
