"""Scale-out for real: ``egt train rl`` (and dynamic sampling) under ``accelerate launch`` with 2 CPU processes (gloo).

accelerate's ``--cpu`` launcher runs multi-process CPU jobs only through mpirun, so the test uses
the torchrun launcher (``--multi_gpu``) on a machine without GPUs; ``use_cpu`` (our CPU default)
makes each rank a CPU process and torch.distributed picks gloo. One prompt group of G = 4
completions is split 2 + 2 across the ranks, so the advantage estimator runs on the gathered
group. Checked: training finishes on both ranks, both ranks see the same curriculum order, each
generation batch is split across the ranks, exactly one checkpoint and one final judge are written,
and each rank's [B_local, T] advantages are its rows of the single-process computation on the whole
group: the judge reward of the completions (recomputed here from their texts), GTPO on the gathered
rewards, ``correct`` and entropies. The judge is the one trained for a few SFT steps, so rewards
and advantages differ between the ranks' rows (an untrained judge's are all 0).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from launch import REPO, launch, launch_egt
from trained_judge import MAX_NEW_TOKENS, judge_rewards

SCRIPT = Path(__file__).with_name("scripted_dynamic_sampling.py")


def single_process_advantages(parts: list[dict], tokenizer, group_size: int) -> torch.Tensor:
    """GTPO on the gathered group as one process computes it: the ranks' rows in rank order, the
    judge reward R = 0.5·format + accuracy·(1 + 0.5·logic) of each completion's text. ``[B, T_max]``."""
    from egt.rl.config import JudgeRLArgs
    from egt.rl.estimators import compute_advantages
    from egt.rl.recipe import estimator_kwargs

    args = JudgeRLArgs(advantage_estimator="gtpo")
    length = max(p["completion_ids"].size(1) for p in parts)

    def pad(x):
        return torch.nn.functional.pad(x, (0, length - x.size(1)))

    texts = [t for p in parts for t in tokenizer.batch_decode(p["completion_ids"], skip_special_tokens=True)]
    _, rewards, correct = judge_rewards(texts, [row for p in parts for row in p["rows"]], args.logic_sentences)
    mask = torch.cat([pad(p["completion_mask"]) for p in parts])  # [B, T_max]
    entropies = torch.cat([pad(p["entropies"]) for p in parts])  # [B, T_max]
    return compute_advantages(
        "gtpo", rewards, mask, group_size, correct=correct, entropies=entropies, **estimator_kwargs(args)
    )


@pytest.mark.slow
def test_two_cpu_processes_train_with_the_same_curriculum(small_lab, trained_judge_dir, tmp_path):
    ids = [f"rl_pool-{i:05d}" for i in range(8)]
    scores = [(7 * k % 8) / 8 for k in range(8)]  # sorted order: ids 0, 7, 6, 5, 4, 3, 2, 1
    (tmp_path / "curate").mkdir()
    (tmp_path / "curate" / "manifest.jsonl").write_text(
        "".join(
            json.dumps({"id": i, "scores": {"answer": s}, "kept": True, "rank": k, "by": "answer"}) + "\n"
            for k, (i, s) in enumerate(zip(ids, scores))
        )
    )
    out, probe = tmp_path / "judge", tmp_path / "probe"
    launch_egt(
        [
            str(probe),
            "train",
            "rl",
            "--model",
            str(trained_judge_dir),
            "--data",
            str(small_lab / "rl_pool.jsonl"),
            "--prompt_style",
            "compact",
            "--manifest",
            str(tmp_path / "curate"),
            "--curriculum",
            "sorted",
            "--advantage_estimator",
            "gtpo",
            "--output_dir",
            str(out),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "2",
            "--num_generations",
            "4",
            "--max_completion_length",
            str(MAX_NEW_TOKENS),
            "--save_strategy",
            "steps",
            "--save_steps",
            "2",
        ],
        launcher=[
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
        ],
        timeout=280,
        module="advantage_probe",
    )

    record = out.with_name("judge.checkpoints") / "curriculum"
    orders = [json.loads((record / f"order.rank{r}.epoch0.json").read_text()) for r in (0, 1)]
    assert orders[0] == orders[1] == [ids[k] for k in (0, 7, 6, 5, 4, 3, 2, 1)]
    consumed = [
        [json.loads(line) for line in (record / f"consumed.rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)
    ]
    for step, prompt in enumerate((ids[0], ids[7])):  # one prompt per step, its 4 completions split 2 + 2
        assert consumed[0][step] == consumed[1][step] == {"step": step, "ids": [prompt, prompt]}

    checkpoints = sorted(p.name for p in out.with_name("judge.checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-2"]
    summary = json.loads((out / "rl_summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 2
    assert (out / "model.safetensors").is_file() and (out / "egt_judge.json").is_file()
    assert not out.with_name("judge.partial").exists()

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(trained_judge_dir))
    for step, prompt in enumerate((ids[0], ids[7])):
        parts = [torch.load(probe / f"rank{r}.step{step}.pt") for r in (0, 1)]
        assert [row["id"] for p in parts for row in p["rows"]] == [prompt] * 4
        want = single_process_advantages(parts, tokenizer, group_size=4)  # [4, T_max]
        for rank, part in enumerate(parts):
            rows, length = part["advantages"].shape
            assert rows == 2
            torch.testing.assert_close(part["advantages"], want[2 * rank : 2 * rank + 2, :length])
        # worth checking: the two ranks' rows differ, so a rank reading the other's slice would show
        assert not torch.allclose(want[:2].abs().sum(1), want[2:].abs().sum(1))


@pytest.mark.slow
def test_dynamic_sampling_trains_the_same_groups_with_one_and_two_processes(small_lab, tiny_judge_dir, tmp_path):
    """tests/rl/scripted_dynamic_sampling.py: o0, o2, o3 uniform, 2 prompts per batch, 3 generation batches
    at most. Step 1: [o0, o1] keeps o1, [o2, o3] nothing, [o4, o5] keeps o4 (and o5, beyond the batch);
    step 2: [o6, o7]. With 2 processes each rank generates one group per round, and the batch [o1, o4]
    needs o1 (generated on rank 1) on rank 0 and o4 (rank 0) on rank 1: the rows arrive intact."""
    args = [str(small_lab), str(tiny_judge_dir)]
    env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    one = subprocess.run(
        [sys.executable, str(SCRIPT), *args, str(tmp_path / "one"), "8"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=280,
        cwd=REPO,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    launch([str(SCRIPT), *args, str(tmp_path / "two"), "4"], timeout=280)
    single = json.loads((tmp_path / "one.rank0.json").read_text())
    ranks = [json.loads((tmp_path / f"two.rank{r}.json").read_text()) for r in (0, 1)]
    o = single["order"]
    for run in (single, *ranks):
        assert [e["trained"] for e in run["log"]] == [[o[1], o[4]], [o[6], o[7]]]
        assert [e["dropped"] for e in run["log"]] == [[o[0], o[2], o[3]], []]
        assert [e["generation_batches"] for e in run["log"]] == [3, 1]
    two_trained = [row for step in (0, 1) for rank in ranks for row in rank["trained"][4 * step : 4 * step + 4]]
    assert (
        [r[0] for r in two_trained]
        == [r[0] for r in single["trained"]]
        == [o[1]] * 4 + [o[4]] * 4 + [o[6]] * 4 + [o[7]] * 4
    )
    assert [r[0] for r in ranks[0]["trained"][:4]] == [o[1]] * 4  # rank 0 trains o1, which rank 1 generated
    assert {r[0] for r in ranks[1]["generated"][:4]} == {o[1]} and {r[0] for r in ranks[0]["generated"][:4]} == {o[0]}
    generated = {json.dumps(r) for rank in ranks for r in rank["generated"]}
    assert all(json.dumps(r) in generated for r in two_trained)  # prompt, completion and advantages intact
    prompts = {r[0]: r[1] for r in single["trained"]}
    assert all(prompts[r[0]] == r[1] for r in two_trained)
    assert all(abs(r[3]) > 0 for r in two_trained)  # every trained group carries signal
