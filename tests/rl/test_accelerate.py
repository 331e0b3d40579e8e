"""Scale-out for real: ``egt train rl`` under ``accelerate launch`` with 2 CPU processes (gloo).

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

import pytest
import torch

from launch import launch_egt
from trained_judge import MAX_NEW_TOKENS, judge_rewards


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
