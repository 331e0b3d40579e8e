"""The teacher-forced entropy pass (egt.entropy.teacher_forced) and ``egt score --rescore``.

Checked on the conftest's tiny untrained judge (float32, CPU): for the same sampled tokens the
teacher-forced entropies equal the ones recorded inside generate (≤ 1e-5), with and without
logits processors in the generation config; in a bf16 model they stay float32 and equal a float32
LM head on the same hidden states. On the judge trained for a few SFT steps, whose rollouts end in
verdicts (so the files hold answer / sentence / peak entropies, not nulls): ``--entropy_source
teacher_forced`` scores the same verdicts with the same entropies; ``--rescore`` keeps verdicts,
re-measures entropies, and says so.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from egt.entropy import token_entropy
from egt.entropy.sampling import generate_rollouts
from egt.entropy.score_store import read_scores
from egt.entropy.teacher_forced import completion_hidden, pad_completions, rollout_entropies
from egt.errors import EgtError
from egt.models.args import ModelArgs
from egt.pipelines.scoring.config import ScoringConfig
from egt.pipelines.scoring.run import score_pool
from egt.records import open_images, read_pairs
from trained_judge import MAX_NEW_TOKENS

from .conftest import assert_same_rollouts_close_entropies

N_ITEMS = 4


# one worker runs the module: its scored reference file and loaded judge are made once
pytestmark = pytest.mark.xdist_group("teacher_forced")


def cfg(**overrides) -> ScoringConfig:
    base = dict(
        rollouts=2, max_new_tokens=MAX_NEW_TOKENS, batch_size=2, prompt_style="compact", seed=0, temperature=0.8
    )
    return ScoringConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def requests(small_lab):
    from egt.judge.base import JudgeRequest

    pairs = read_pairs(small_lab / "rl_pool.jsonl")[:3]
    return [JudgeRequest(p, s, open_images(p, small_lab)) for p in pairs for s in (False, True)]


def _max_diff(gen, tf) -> float:
    return max((gen.entropies[r, :n] - tf[r, :n]).abs().max().item() for r, n in enumerate(gen.lengths))


def test_teacher_forced_equals_generation_time_entropies(loaded, requests):
    tau = 0.7
    gen = generate_rollouts(
        loaded, requests, list(range(len(requests))), temperature=tau, max_new_tokens=16, style="compact"
    )
    tf = rollout_entropies(
        loaded, requests, gen.ids, lengths=gen.lengths, temperature=tau, style="compact", chunk_size=7
    )
    assert tf.dtype == torch.float32 and tf.shape == gen.ids.shape
    assert _max_diff(gen, tf) <= 1e-5
    for row, n in enumerate(gen.lengths):
        assert torch.all(tf[row, n:] == 0)
    # lists of ids (one per row, ragged) give the same numbers as the padded tensor
    ragged = [gen.ids[r, :n].tolist() for r, n in enumerate(gen.lengths)]
    assert torch.allclose(
        rollout_entropies(loaded, requests, ragged, temperature=tau, style="compact")[:, : max(gen.lengths)],
        tf[:, : max(gen.lengths)],
        atol=1e-6,
    )


def test_the_checkpoints_generation_config_does_not_change_what_is_sampled_or_measured(loaded, requests):
    """A repetition penalty and suppressed tokens in the model's generation config are not applied:
    scoring samples our one definition (egt.models.generation) and the teacher-forced pass measures
    the same distribution (the image token suppressed in both)."""
    seeds = [3, 1, 4, 1, 5, 9]
    plain = generate_rollouts(loaded, requests, seeds, temperature=1.0, max_new_tokens=10, style="compact")
    config = loaded.model.generation_config
    saved = (config.repetition_penalty, config.suppress_tokens)
    config.repetition_penalty, config.suppress_tokens = 1.5, [5, 9]
    try:
        gen = generate_rollouts(loaded, requests, seeds, temperature=1.0, max_new_tokens=10, style="compact")
        tf = rollout_entropies(loaded, requests, gen.ids, lengths=gen.lengths, temperature=1.0, style="compact")
    finally:
        config.repetition_penalty, config.suppress_tokens = saved
    assert torch.equal(gen.ids, plain.ids) and torch.equal(gen.entropies, plain.entropies)
    assert _max_diff(gen, tf) <= 1e-5


def test_bf16_model_gives_float32_entropies_of_a_float32_head(tiny_judge_dir, requests):
    from egt.judge.generative import encode_batch
    from egt.models.generation import suppressed_tokens
    from egt.models.load import load_model

    bf16 = load_model(str(tiny_judge_dir), device="cpu", dtype="bfloat16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    gen = generate_rollouts(
        bf16, requests, list(range(len(requests))), temperature=1.0, max_new_tokens=8, style="compact"
    )
    tf = rollout_entropies(bf16, requests, gen.ids, lengths=gen.lengths, temperature=1.0, style="compact")
    assert tf.dtype == torch.float32
    ids, lens = pad_completions(gen.ids, 0, gen.lengths)
    keep = torch.arange(ids.shape[1])[None] < torch.tensor(lens)[:, None]
    with torch.no_grad():
        hidden = completion_hidden(
            bf16.model, dict(encode_batch(bf16, requests, "compact")), ids, keep
        )  # bf16 [R, T, h]
        logits = hidden.float() @ bf16.model.get_output_embeddings().weight.float().t()  # float32 reference head
    logits[..., suppressed_tokens(bf16.model, bf16.is_vision)] = float("-inf")  # never sampled (TRL's rule too)
    reference = token_entropy(logits) * keep
    assert (tf - reference).abs().max().item() <= 1e-5
    rounded = rollout_entropies(
        bf16, requests, gen.ids, lengths=gen.lengths, temperature=1.0, style="compact", head_dtype=None
    )  # the model's bf16 head, as generate rounds it
    assert rounded.dtype == torch.float32 and not torch.equal(rounded, tf)


# ----------------------------------------------------------------------------------------------
# egt score --entropy_source teacher_forced, and --rescore
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generation_scores(tmp_path_factory, small_lab, trained_judge_dir, trained):
    out = tmp_path_factory.mktemp("gen") / "scores.jsonl"
    score_pool(
        ModelArgs(model=str(trained_judge_dir), device="cpu"),
        small_lab / "rl_pool.jsonl",
        out,
        cfg(keep_token_ids=True),
        limit=N_ITEMS,
        loaded=trained,
    )
    return out


def test_score_with_teacher_forced_entropy_source(tmp_path, small_lab, trained_judge_dir, trained, generation_scores):
    out = tmp_path / "tf.jsonl"
    score_pool(
        ModelArgs(model=str(trained_judge_dir), device="cpu"),
        small_lab / "rl_pool.jsonl",
        out,
        cfg(keep_token_ids=True, entropy_source="teacher_forced"),
        limit=N_ITEMS,
        loaded=trained,
    )
    meta, records = read_scores(out)
    gen_meta, gen_records = read_scores(generation_scores)
    assert meta["header"]["scoring"]["entropy_source"] == "teacher_forced"
    assert gen_meta["header"]["scoring"]["entropy_source"] == "generation"
    assert_same_rollouts_close_entropies(records, gen_records, atol=1e-5 + 1e-6)  # file rounds to 6 decimals
    with pytest.raises(EgtError, match="entropy_source"):
        cfg(entropy_source="vllm").check()


def test_rescore_same_checkpoint_reproduces_entropies_and_records_its_source(
    tmp_path, trained_judge_dir, trained, generation_scores
):
    from egt.pipelines.scoring.rescore import rescore_pool

    out = tmp_path / "re.jsonl"
    summary = rescore_pool(
        ModelArgs(model=str(trained_judge_dir), device="cpu"), generation_scores, out, loaded=trained, batch_size=3
    )
    assert summary["scored_now"] == N_ITEMS
    meta, records = read_scores(out)
    _, original = read_scores(generation_scores)
    assert_same_rollouts_close_entropies(records, original, atol=1e-5 + 1e-6)
    assert [r["token_ids"] for r in records] == [r["token_ids"] for r in original]
    scoring = meta["header"]["scoring"]
    assert scoring["entropy_source"] == "teacher_forced" and scoring["rescore_of"]["tokens"] == "token_ids"
    assert scoring["rescore_of"]["entropy_source"] == "generation"
    assert meta["header"]["model"]["path"] == str(trained_judge_dir.resolve())
    again = rescore_pool(ModelArgs(model=str(trained_judge_dir), device="cpu"), generation_scores, out, loaded=trained)
    assert again["complete_already"]


def test_rescore_under_another_checkpoint_keeps_verdicts_and_changes_entropies(
    tmp_path, trained_judge_dir, trained, generation_scores
):
    from egt.models.load import load_model
    from egt.pipelines.scoring.rescore import rescore_pool

    other_dir = tmp_path / "other"
    shutil.copytree(trained_judge_dir, other_dir)
    other = load_model(str(other_dir), device="cpu", dtype="float32")
    with torch.no_grad():
        torch.manual_seed(0)
        for p in other.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    other.model.save_pretrained(other_dir)

    _, records = read_scores(generation_scores)
    meta = json.loads((generation_scores.parent / (generation_scores.name + ".meta.json")).read_text())
    out = tmp_path / "re_ids.jsonl"
    rescore_pool(ModelArgs(model=str(other_dir), device="cpu"), generation_scores, out, loaded=other)
    new_meta, new = read_scores(out)
    assert new_meta["header"]["scoring"]["rescore_of"]["tokens"] == "token_ids"
    assert new_meta["header"]["model"]["fingerprint"] != meta["header"]["model"]["fingerprint"]
    assert [r["verdicts"] for r in new] == [r["verdicts"] for r in records]
    for key in ("answer_entropies", "sentence_entropies", "peak_entropies"):  # re-measured under the other weights
        pairs = [(u, v) for x, y in zip(new, records) for u, v in zip(x[key], y[key]) if v is not None]
        assert pairs and all(u is not None and abs(u - v) > 1e-4 for u, v in pairs), key

    # a file without token ids (re-tokenised texts), with well-formed judge texts so every statistic exists
    text = "<think>The first one is a red square. So it fits.</think><answer>1</answer>"
    texts_only = tmp_path / "texts.jsonl"
    texts_only.write_text(
        "".join(
            json.dumps(
                {
                    **{k: v for k, v in r.items() if k != "token_ids"},
                    "texts": [text] * len(r["swapped"]),
                    "verdicts": [1 if s else 0 for s in r["swapped"]],
                }
            )
            + "\n"
            for r in records
        )
    )
    (tmp_path / "texts.jsonl.meta.json").write_text(json.dumps(meta))
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    rescore_pool(ModelArgs(model=str(trained_judge_dir), device="cpu"), texts_only, a, loaded=trained)
    rescore_pool(ModelArgs(model=str(other_dir), device="cpu"), texts_only, b, loaded=other)
    (meta_a, ra), (_, rb) = read_scores(a), read_scores(b)
    assert meta_a["header"]["scoring"]["rescore_of"]["tokens"] == "retokenised_texts"
    assert (
        [r["verdicts"] for r in ra]
        == [r["verdicts"] for r in rb]
        == [[1 if s else 0 for s in r["swapped"]] for r in records]
    )
    for key in ("answer_entropy", "sentence_entropy", "peak_entropy"):
        assert all(x[key] is not None and abs(x[key] - y[key]) > 1e-4 for x, y in zip(ra, rb)), key

    bare = tmp_path / "bare.jsonl"
    bare.write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k not in ("token_ids", "texts")}) + "\n" for r in records)
    )
    (tmp_path / "bare.jsonl.meta.json").write_text(json.dumps(meta))
    with pytest.raises(EgtError, match="neither rollout texts nor token ids"):
        rescore_pool(ModelArgs(model=str(other_dir), device="cpu"), bare, tmp_path / "x.jsonl", loaded=other)
