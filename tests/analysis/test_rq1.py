"""RQ1's numbers from a scored pool (``rq1_from_scores``: analyse + curate; scoring is tested in tests/entropy)."""

from __future__ import annotations

import pytest

from egt.analysis.rq1 import SIGNALS, TARGETS, best_signal, rq1_from_scores, rq1_summary_rows
from egt.errors import EgtError
from egt.pipelines.rq1 import run_rq1
from synthetic_scores import synthetic_records, write_scores


def test_rq1_reports_every_signal_the_ceiling_and_the_targets(tmp_path, scores_file, small_lab, pool):
    r = rq1_from_scores(scores_file, small_lab / "rl_pool.jsonl", small_lab, tmp_path / "rq1", signal="peak")
    for s in SIGNALS:
        for key in (
            f"spearman_{s}",
            f"auroc_flipped_{s}",
            f"auroc_hard_{s}",
            f"ceiling_fraction_flipped_{s}",
            f"ceiling_fraction_hard_{s}",
        ):
            assert key in r, key
    assert r["auroc_flipped_ceiling"] == pytest.approx(1.0) and r["auroc_hard_ceiling"] == pytest.approx(136 / 256)
    assert r["spearman_peak"] == pytest.approx(-1.0) and r["auroc_flipped_sentence"] == pytest.approx(0.0)
    assert r["best_signal"] == "answer"  # answer and peak both reach the ceiling: the earlier signal wins
    assert set(r["targets"]) == set(TARGETS)
    assert r["targets"]["auroc_flipped_vs_ceiling"] and r["targets"]["auroc_hard_vs_ceiling"]
    assert r["targets"]["spearman_negative"]
    cur = r["curation"]
    assert (cur["selector"], cur["by"], cur["kept"], cur["with_format_failures"]) == ("entropy:peak", "peak", 16, 0)
    flips = [p.meta["flipped"] for p in pool]  # curated by peak = 2i/N: the first half is kept
    assert cur["flip_rate_kept"] == pytest.approx(sum(flips[:16]) / 16, abs=1e-4)
    assert r["targets"]["curation_flip_rate"] == (cur["flip_rate_kept"] < cur["flip_rate_dropped"])
    rows = rq1_summary_rows(r)
    text = "\n".join(" | ".join(row) for row in rows)
    assert "peak entropy (curated by)" in text and "answer entropy (best)" in text and "ceiling" in text
    assert "1.000 (100%)" in text
    # the pool's review page ranks by what finds flipped labels (disagreement), not by the curation signal
    page = (tmp_path / "rq1" / "analysis" / "review.html").read_text()
    assert "items ranked by disagreement, most suspect first" in page


def test_best_signal_and_targets_follow_the_numbers():
    r = {"auroc_flipped_ceiling": 0.9, "auroc_hard_ceiling": 0.8}
    for s, (f, h) in {"answer": (0.6, 0.6), "sentence": (0.7, 0.5), "vote": (0.8, 0.7), "peak": (None, None)}.items():
        r.update(
            {
                f"auroc_flipped_{s}": f,
                f"auroc_hard_{s}": h,
                f"ceiling_fraction_flipped_{s}": None if f is None else f / 0.9,
                f"ceiling_fraction_hard_{s}": None if h is None else h / 0.8,
            }
        )
    assert best_signal(r) == "vote"
    assert best_signal({"spearman_answer": -0.1, "spearman_sentence": -0.3}) == "sentence"  # no truth: most negative ρ
    assert best_signal({}) is None
    from egt.analysis.rq1 import _targets

    t = _targets({**r, "spearman_vote": 0.1, "curation": {"flip_rate_kept": 0.1, "flip_rate_dropped": 0.3}}, "vote")
    # 0.8 ≥ 0.85 × 0.9 = 0.765; 0.7 ≥ 0.80 × 0.8 = 0.64; ρ = 0.1 is not < 0; 10% < 30%
    assert t == {
        "auroc_flipped_vs_ceiling": True,
        "auroc_hard_vs_ceiling": True,
        "spearman_negative": False,
        "curation_flip_rate": True,
    }
    assert _targets({}, None) == dict.fromkeys(TARGETS)


def test_rq1_refuses_an_unknown_signal_before_scoring(tmp_path, small_lab, scores_file):
    with pytest.raises(EgtError, match="--by"):
        run_rq1(tmp_path / "no_judge", small_lab / "rl_pool.jsonl", small_lab, tmp_path / "rq1", signal="loudness")
    with pytest.raises(EgtError, match="--by"):
        rq1_from_scores(scores_file, small_lab / "rl_pool.jsonl", small_lab, tmp_path / "rq1", signal="loudness")
    assert not (tmp_path / "rq1").exists()


def test_rq1_without_ambiguity_has_no_ceiling_targets(tmp_path, small_lab, pool):
    records = [{k: v for k, v in r.items() if k != "ambiguity"} for r in synthetic_records(pool)]
    r = rq1_from_scores(
        write_scores(tmp_path / "s.jsonl", records), small_lab / "rl_pool.jsonl", small_lab, tmp_path / "rq1"
    )
    assert r["auroc_flipped_ceiling"] is None and r["ceiling_fraction_flipped_answer"] is None
    assert r["best_signal"] == "answer"  # by mean AUROC instead
    assert r["targets"]["auroc_flipped_vs_ceiling"] is None and r["targets"]["spearman_negative"] is True


def test_run_rq1_end_to_end_with_the_tiny_judge(tmp_path, tiny_judge_dir, small_lab, pool):
    """Score (scoring options passed through) → analyse → curate; the untrained judge fails the format
    in every rollout, so every item carries format failures and there is no answer entropy."""
    import json

    r = run_rq1(
        tiny_judge_dir,
        small_lab / "rl_pool.jsonl",
        small_lab,
        tmp_path / "rq1",
        rollouts=2,
        max_new_tokens=6,
        batch_size=16,
        peak_k=2,
        temperature=0.9,
        signal="sentence",
    )
    header = json.loads((tmp_path / "rq1" / "scores.jsonl.meta.json").read_text())["header"]
    assert (header["scoring"]["peak_k"], header["scoring"]["temperature"]) == (2, 0.9)
    assert r["signal"] == "sentence" and r["curation"]["by"] == "sentence" and r["rollouts"] == 2
    assert r["n_items"] == len(pool) and set(r["targets"]) == set(TARGETS)
    assert r["auroc_flipped_ceiling"] is not None  # the lab carries its ambiguity into the scores
    assert r["items_with_format_failures"] == r["curation"]["with_format_failures"]
    assert set(r["seconds"]) == {"score", "analyze", "curate"}
    if r["items_with_format_failures"] == len(pool):
        assert r["auroc_flipped_answer"] is None
