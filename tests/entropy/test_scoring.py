"""``egt score``: entropies from inside generate, per-row seeded sampling, the resumable file.

The sampler tests use the conftest's tiny *untrained* judge (its rollouts are noise, which is all
they need: the statistics themselves are tested on hand-made rollouts and in test_maths). The file
and resume tests use the judge after a few SFT steps (``trained``): most of its rollouts end in a
verdict, so "resumed == uninterrupted" compares verdicts and answer / sentence / peak entropies,
not rows of nulls (checked by ``assert_informative``).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from egt.data.presentation import presented_swapped
from egt.entropy import token_entropy
from egt.entropy.sampling import RolloutSampler, generate_rollouts
from egt.entropy.score_store import meta_path, partial_path, read_partial, read_scores
from egt.entropy.summary import summarise_item
from egt.errors import EgtError
from egt.models.args import ModelArgs
from egt.pipelines.scoring.config import ScoringConfig
from egt.pipelines.scoring.run import score_pool
from egt.records import PreferencePair, open_images, read_pairs
from trained_judge import MAX_NEW_TOKENS as TRAINED_JUDGE_MAX_NEW_TOKENS

from .conftest import assert_informative

N_ITEMS, BATCH = 6, 2


# one worker runs the module: its scored reference file and loaded judge are made once
pytestmark = pytest.mark.xdist_group("scoring")


def cfg(**overrides) -> ScoringConfig:
    base = dict(
        rollouts=2, max_new_tokens=TRAINED_JUDGE_MAX_NEW_TOKENS, batch_size=BATCH, prompt_style="compact", seed=0
    )
    return ScoringConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def model_args(trained_judge_dir) -> ModelArgs:
    return ModelArgs(model=str(trained_judge_dir), device="cpu")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, small_lab, model_args, trained) -> Path:
    """One uninterrupted run: the file every resumed run must equal; its verdicts and entropies are numbers."""
    out = tmp_path_factory.mktemp("ref") / "scores.jsonl"
    score_pool(model_args, small_lab / "rl_pool.jsonl", out, cfg(), limit=N_ITEMS, loaded=trained)
    assert_informative(read_scores(out)[1])
    return out


# ----------------------------------------------------------------------------------------------
# The sampler
# ----------------------------------------------------------------------------------------------


def test_sampler_draws_from_softmax_and_rows_do_not_share_randomness():
    """Gumbel-max: argmax(z/τ + g) ~ softmax(z/τ); a row's draws depend only on its own seed."""
    logits = torch.tensor([[2.0, 1.0, 0.0, -math.inf]])
    tau = 0.8
    draws = RolloutSampler(range(4000), tau)(None, logits.expand(4000, 4).clone()).argmax(-1)  # 4000 rows, 1 draw each
    counts = torch.bincount(draws, minlength=4).float()
    expected = torch.softmax(logits / tau, -1)[0]
    assert counts[3] == 0
    assert torch.allclose(counts / counts.sum(), expected, atol=0.03)

    alone = RolloutSampler([7], tau)
    together = RolloutSampler([1, 7, 9], tau)
    z = torch.randn(3, 50)
    for _ in range(5):  # several steps: generator streams advance per row
        a = alone(None, z[1:2].clone()).argmax(-1)
        b = together(None, z.clone()).argmax(-1)
        assert a.item() == b[1].item()
    assert torch.allclose(torch.stack(together.entropies)[:, 1], torch.stack(alone.entropies)[:, 0])
    assert torch.allclose(together.entropies[0], token_entropy(z / tau))


def test_generation_entropies_equal_a_reference_forward_and_output_logits(loaded, small_lab):
    """H_t recorded inside generate = token_entropy of a separate forward over the same tokens / τ,
    and = token_entropy of generate's own ``output_logits`` (the brief's suggested source), with the
    image token suppressed in both (the one sampling definition, egt.models.generation)."""
    from transformers import LogitsProcessorList

    from egt.judge.base import JudgeRequest
    from egt.judge.generative import GenerationSettings, encode_batch, generation_kwargs
    from egt.models.generation import suppressed_tokens

    pairs = read_pairs(small_lab / "rl_pool.jsonl")[:2]
    requests = [JudgeRequest(p, s, open_images(p, small_lab)) for p in pairs for s in (False, True)]
    tau, seeds = 0.7, [11, 12, 13, 14]
    gen = generate_rollouts(loaded, requests, seeds, temperature=tau, max_new_tokens=6, style="compact")
    enc = encode_batch(loaded, requests, "compact")
    prompt = enc["input_ids"].shape[1]
    full = torch.cat([enc["input_ids"], gen.ids], 1)
    mask = torch.cat([enc["attention_mask"], torch.ones_like(gen.ids)], 1)
    with torch.no_grad():
        logits = loaded.model(
            input_ids=full, attention_mask=mask, pixel_values=enc["pixel_values"], image_grid_thw=enc["image_grid_thw"]
        ).logits  # [R, P+T, V]
    suppressed = suppressed_tokens(loaded.model, loaded.is_vision)  # never drawn, as in TRL's GRPO
    assert suppressed  # the image (and video) token of the VLM
    logits[..., suppressed] = float("-inf")
    reference = token_entropy(logits[:, prompt - 1 : -1] / tau)  # position p predicts token p+1
    for row, n in enumerate(gen.lengths):
        assert torch.allclose(gen.entropies[row, :n], reference[row, :n], atol=1e-3)

    sampler = RolloutSampler(seeds, tau)
    out = loaded.model.generate(
        **enc,
        **generation_kwargs(loaded, GenerationSettings(max_new_tokens=6, temperature=0.0)),
        logits_processor=LogitsProcessorList([sampler]),
        output_logits=True,
        return_dict_in_generate=True,
    )
    assert torch.equal(out.sequences[:, prompt:], gen.ids)  # same seeds → same rollouts
    raw = torch.stack(out.logits, 1)  # [R, T, V] before the processors: suppress as generate does
    raw[..., suppressed] = float("-inf")
    assert torch.allclose(token_entropy(raw / tau), gen.entropies, atol=1e-6)


def test_summarise_item_maps_verdicts_to_stored_order_and_averages():
    pair = PreferencePair(
        id="x",
        question="q",
        responses=("a", "b"),
        preferred=1,
        meta={"flipped": True, "hard": False, "difficulty": 0.3},
    )
    rollouts = [
        {"swapped": False, "text": "t1", "n_tokens": 5, "answer_entropy": 0.2, "sentence_entropy": 1.0, "choice": 1},
        {"swapped": True, "text": "t2", "n_tokens": 6, "answer_entropy": 0.4, "sentence_entropy": None, "choice": 1},
        {"swapped": True, "text": "t3", "n_tokens": 7, "answer_entropy": None, "sentence_entropy": 3.0, "choice": None},
    ]
    r = summarise_item(pair, 4, rollouts)
    assert r["verdicts"] == [1, 0, None]  # swapped choice 1 (Response 2 shown) is stored response 0
    assert r["accuracy"] == pytest.approx(1 / 3) and r["format_rate"] == pytest.approx(2 / 3)
    assert r["format_failures"] == 1
    assert r["answer_entropy"] == pytest.approx(0.3) and r["sentence_entropy"] == pytest.approx(2.0)
    assert r["vote_entropy"] == pytest.approx(math.log(3))
    assert (r["flipped"], r["hard"], r["difficulty"], r["index"]) == (True, False, 0.3, 4)
    assert r["texts"] == ["t1", "t2", "t3"]


def test_failed_rollouts_never_give_an_answer_entropy_and_are_counted():
    """Issue 14: 3 of 4 rollouts fail the strict parse. Each may still carry an answer entropy from
    a lenient finder (0.01 here); the old summary averaged them in (0.2325) and recorded no failure
    count. Now a failed rollout has none, the item's answer entropy is the parsed one's, and
    ``format_failures`` = 3 says how little it rests on. The peak is a mean over rollouts like the
    sentence entropy; ``ambiguity`` (the lab's truth) is copied."""
    pair = PreferencePair(id="y", question="q", responses=("a", "b"), preferred=0, meta={"ambiguity": 0.7, "flaw": "x"})
    failed = {
        "swapped": False,
        "text": "<answer>3</answer>",
        "n_tokens": 4,
        "answer_entropy": 0.01,
        "sentence_entropy": None,
        "peak_entropy": None,
        "choice": None,
    }
    ok = {
        "swapped": False,
        "text": "ok",
        "n_tokens": 9,
        "answer_entropy": 0.9,
        "sentence_entropy": 0.5,
        "peak_entropy": 1.5,
        "choice": 0,
    }
    r = summarise_item(pair, 0, [failed, {**failed, "peak_entropy": 0.5}, failed, ok])
    assert r["answer_entropies"] == [None, None, None, 0.9]
    assert r["answer_entropy"] == pytest.approx(0.9)
    assert (r["format_failures"], r["format_rate"]) == (3, 0.25)
    assert r["peak_entropies"] == [None, 0.5, None, 1.5] and r["peak_entropy"] == pytest.approx(1.0)
    assert r["ambiguity"] == 0.7 and "flaw" not in r
    assert r["verdicts"] == [None, None, None, 0] and r["accuracy"] == 0.25


def test_format_failures_of_older_records_come_from_their_verdicts():
    from egt.entropy.score_store import format_failures

    assert format_failures({"format_failures": 2, "verdicts": [None, 1, 0]}) == 2
    assert format_failures({"verdicts": [None, 1, None]}) == 2  # written before the field existed
    assert format_failures({}) == 0


def test_peak_k_is_checked():
    cfg(peak_k=1).check()
    with pytest.raises(EgtError, match="--peak_k"):
        cfg(peak_k=0).check()


def test_random_order_is_seeded_per_item_and_rollout():
    flips = [presented_swapped(3, f"id{i}", k, "random") for i in range(40) for k in range(4)]
    assert flips == [presented_swapped(3, f"id{i}", k, "random") for i in range(40) for k in range(4)]
    assert 40 < sum(flips) < 120
    assert not any(presented_swapped(3, f"id{i}", 0, "stored") for i in range(40))


def test_both_orders_alternate_rollouts():
    """``--order both``: odd rollouts swapped, so K = 4 shows each order twice, whatever the item."""
    assert [presented_swapped(3, f"id{i}", k, "both") for i in range(3) for k in range(4)] == [False, True] * 6


# ----------------------------------------------------------------------------------------------
# The file
# ----------------------------------------------------------------------------------------------


def test_scores_file_fields_sidecar_and_no_leftovers(reference, small_lab):
    meta, records = read_scores(reference)
    pairs = read_pairs(small_lab / "rl_pool.jsonl")[:N_ITEMS]
    assert [r["id"] for r in records] == [p.id for p in pairs]
    for r, p in zip(records, pairs):
        assert len(r["verdicts"]) == len(r["answer_entropies"]) == len(r["texts"]) == 2
        assert r["preferred"] == p.preferred and r["flipped"] == p.meta["flipped"] and r["hard"] == p.meta["hard"]
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["format_rate"] <= 1.0 and 0.0 <= r["mixed_entropy"] <= 1.0
        for key in (
            "answer_entropy",
            "sentence_entropy",
            "peak_entropy",
            "vote_entropy",
            "difficulty",
            "swapped",
            "n_tokens",
            "ambiguity",
        ):
            assert key in r
        assert len(r["peak_entropies"]) == len(r["sentence_entropies"]) == 2
        # the failure rule on real rollouts: an answer entropy exactly where the strict parse succeeded
        assert [a is None for a in r["answer_entropies"]] == [v is None for v in r["verdicts"]]
        assert r["format_failures"] == sum(v is None for v in r["verdicts"])
    header = meta["header"]
    assert header["scoring"]["rollouts"] == 2 and header["scoring"]["seed"] == 0 and header["scoring"]["peak_k"] == 3
    assert meta["summary"]["items_with_format_failures"] == sum(r["format_failures"] > 0 for r in records)
    assert len(header["model"]["fingerprint"]) == 16 and header["data"]["n_items"] == N_ITEMS
    assert not partial_path(reference).exists()


def test_crash_mid_run_then_resume_equals_uninterrupted(tmp_path, reference, small_lab, model_args, trained):
    out = tmp_path / "scores.jsonl"

    def crash(batch: int) -> None:
        if batch == 1:
            raise KeyboardInterrupt  # as if killed right after the second batch reached the disk

    with pytest.raises(KeyboardInterrupt):
        score_pool(model_args, small_lab / "rl_pool.jsonl", out, cfg(), limit=N_ITEMS, on_batch=crash, loaded=trained)
    assert not out.exists()
    _, done, _ = read_partial(partial_path(out))
    assert len(done) == 2 * BATCH
    with open(partial_path(out), "a") as fh:  # a line cut mid-write by the kill
        fh.write('{"id": "rl_pool-00004", "index": 4, "answer_ent')
    # rerun, even with another --batch_size: the run keeps the batches it started with
    summary = score_pool(model_args, small_lab / "rl_pool.jsonl", out, cfg(batch_size=3), limit=N_ITEMS, loaded=trained)
    assert summary["resumed"] == 2 * BATCH and summary["scored_now"] == N_ITEMS - 2 * BATCH
    assert out.read_bytes() == reference.read_bytes()
    assert json.loads(meta_path(out).read_text()) == json.loads(meta_path(reference).read_text())
    again = score_pool(model_args, small_lab / "rl_pool.jsonl", out, cfg(), limit=N_ITEMS, loaded=trained)
    assert again["complete_already"] and out.read_bytes() == reference.read_bytes()


def test_existing_output_of_another_config_is_refused_unless_overwrite(
    tmp_path, reference, small_lab, model_args, trained
):
    out = tmp_path / "scores.jsonl"
    out.write_bytes(reference.read_bytes())
    meta_path(out).write_bytes(meta_path(reference).read_bytes())
    with pytest.raises(EgtError, match=r"another configuration.*seed=0→1.*--overwrite"):
        score_pool(model_args, small_lab / "rl_pool.jsonl", out, cfg(seed=1), limit=N_ITEMS, loaded=trained)
    assert out.read_bytes() == reference.read_bytes()

    meta_path(out).unlink()  # a file we did not write
    with pytest.raises(EgtError, match="no readable sidecar"):
        score_pool(model_args, small_lab / "rl_pool.jsonl", out, cfg(), limit=N_ITEMS, loaded=trained)

    partial = partial_path(tmp_path / "other.jsonl")  # an unfinished run of another config
    partial.write_text(
        json.dumps({**json.loads(meta_path(reference).read_text())["header"], "scoring": {"seed": 99}}) + "\n"
    )
    with pytest.raises(EgtError, match=r"unfinished run with other settings \(scoring .*seed.*--overwrite"):
        score_pool(
            model_args, small_lab / "rl_pool.jsonl", tmp_path / "other.jsonl", cfg(), limit=N_ITEMS, loaded=trained
        )

    score_pool(model_args, small_lab / "rl_pool.jsonl", out, cfg(seed=1), limit=2, overwrite=True, loaded=trained)
    assert len(read_scores(out)[1]) == 2


@pytest.mark.parametrize(
    "garbage, why",
    [("not json\n", "malformed JSON"), ('{"id": "nope"}\n', "not in the dataset"), ('["a"]\n', "string 'id'")],
)
def test_corrupt_resume_file_is_a_clear_error_and_nothing_is_overwritten(
    tmp_path, reference, small_lab, model_args, trained, garbage, why
):
    out = tmp_path / "scores.jsonl"
    header = json.loads(meta_path(reference).read_text())["header"]
    first = reference.read_text().splitlines()[0]
    body = first + "\n" + garbage
    partial_path(out).write_text(json.dumps(header) + "\n" + body + first.replace("00000", "00001") + "\n")
    before = partial_path(out).read_bytes()
    with pytest.raises(EgtError, match=f"corrupt resume file \\(.*{why}"):
        score_pool(model_args, small_lab / "rl_pool.jsonl", out, cfg(), limit=N_ITEMS, loaded=trained)
    assert partial_path(out).read_bytes() == before and not out.exists()


def test_vlm_judge_refuses_items_without_their_images(tmp_path, small_lab, model_args, trained):
    pairs = read_pairs(small_lab / "rl_pool.jsonl")[:3]
    lines = [p.to_json() for p in pairs]
    lines[1]["images"] = ["images/missing.png"]
    del lines[2]["images"]
    data = small_lab / "broken_pool.jsonl"  # beside the lab's images
    data.write_text("".join(json.dumps(x) + "\n" for x in lines))
    try:
        with pytest.raises(
            EgtError, match=r"broken_pool.jsonl: line 2 \(id='rl_pool-00001'\): field 'images': image file not"
        ):
            score_pool(model_args, data, tmp_path / "s.jsonl", cfg(), loaded=trained)
        lines[1]["images"] = pairs[1].images
        data.write_text("".join(json.dumps(x) + "\n" for x in lines))
        with pytest.raises(EgtError, match=r"no images but the judge is a vision-language model.*rl_pool-00002"):
            score_pool(model_args, data, tmp_path / "s.jsonl", cfg(), loaded=trained)
    finally:
        data.unlink()
    assert not list(tmp_path.iterdir())


def test_a_corrupt_image_stops_before_scoring_or_is_skipped_and_counted(tmp_path, small_lab, model_args, loaded):
    """Every image is decoded in the preflight: a truncated PNG on line 3 is named with its file, line and
    field before any file is written; with skip_bad the item is left out, counted in the header, and
    curate reads the pool with it."""
    from egt.curation.manifest import curate_pool

    pairs = read_pairs(small_lab / "rl_pool.jsonl")[:4]
    (tmp_path / "images").mkdir()
    for p in pairs:
        (tmp_path / p.images[0]).write_bytes((small_lab / p.images[0]).read_bytes())
    (tmp_path / pairs[2].images[0]).write_bytes((small_lab / pairs[2].images[0]).read_bytes()[:40])  # truncated
    data = tmp_path / "pool.jsonl"
    data.write_text("".join(json.dumps(p.to_json()) + "\n" for p in pairs))
    out = tmp_path / "run" / "scores.jsonl"
    with pytest.raises(EgtError, match=rf"^{data}: line 3 \(id='{pairs[2].id}'\): field 'images': cannot decode"):
        score_pool(model_args, data, out, cfg(), loaded=loaded)
    assert not (tmp_path / "run").exists()
    summary = score_pool(model_args, data, out, cfg(), loaded=loaded, skip_bad=True)
    assert summary["skipped_bad"] == 1 and summary["n_items"] == 3
    meta, records = read_scores(out)
    assert [r["id"] for r in records] == [pairs[i].id for i in (0, 1, 3)]
    assert meta["header"]["data"]["skipped_bad"] == {"count": 1, "ids": [pairs[2].id]}
    s = curate_pool(out, data, tmp_path / "cur", n=2, allow_missing_signal=True, link_images=False)
    assert s["counts"]["pool"] == 3 and s["counts"]["skipped_bad_images"] == 1


def test_cli_bad_inputs_exit_2_and_write_nothing(tmp_path, small_lab, tiny_judge_dir, capsys):
    from egt.cli import main

    out = tmp_path / "s"
    data = str(small_lab / "rl_pool.jsonl")
    cases = [
        ["--output_dir", str(out), "--model", str(tiny_judge_dir)],  # no --data
        ["--data", data, "--output_dir", str(out), "--model", str(tmp_path / "no_such_model")],
        ["--data", data, "--output_dir", str(out), "--model", str(tiny_judge_dir), "--rollouts", "0"],
        ["--data", data, "--output_dir", str(out), "--model", str(tiny_judge_dir), "--peak_k", "0"],
        ["--data", str(tmp_path / "missing.jsonl"), "--output_dir", str(out), "--model", str(tiny_judge_dir)],
    ]
    for argv in cases:
        assert main(["score", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("egt: error:") and "Traceback" not in err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_equals_uninterrupted(tmp_path, small_lab, tiny_judge_dir, loaded):
    """The real thing: ``egt score`` in a subprocess, SIGKILLed mid-run, rerun with the same command;
    the result equals an uninterrupted run of the same configuration (here run in-process). The
    untrained judge with 6 new tokens keeps it cheap: what is compared here is the kill path (texts,
    file), the entropies of a resumed run are checked in test_crash_mid_run_then_resume_equals_uninterrupted."""
    env = {**os.environ, "EGT_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}
    model_args = ModelArgs(model=str(tiny_judge_dir), device="cpu")
    n = 24
    out = tmp_path / "b" / "scores.jsonl"  # what --output_dir b writes
    command = [
        sys.executable,
        "-m",
        "egt.cli",
        "score",
        "--model",
        model_args.model,
        "--device",
        "cpu",
        "--data",
        str(small_lab / "rl_pool.jsonl"),
        "--output_dir",
        str(out.parent),
        "--rollouts",
        "2",
        "--max_new_tokens",
        "6",
        "--batch_size",
        "2",
        "--prompt_style",
        "compact",
        "--limit",
        str(n),
    ]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if partial_path(out).exists() and partial_path(out).read_text().count("\n") >= 4:  # header + ≥ 3 items
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run finished before it could be killed"
    assert 3 <= len(read_partial(partial_path(out))[1]) < n
    subprocess.run(command, env=env, check=True, capture_output=True)
    uninterrupted = tmp_path / "a.jsonl"
    score_pool(model_args, small_lab / "rl_pool.jsonl", uninterrupted, cfg(max_new_tokens=6), limit=n, loaded=loaded)
    assert out.read_bytes() == uninterrupted.read_bytes()
