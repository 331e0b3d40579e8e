"""Scale-out for real: ``egt train rl`` under ``accelerate launch`` with 2 CPU processes (gloo).

accelerate's ``--cpu`` launcher runs multi-process CPU jobs only through mpirun, so the test uses
the torchrun launcher (``--multi_gpu``) on a machine without GPUs; ``use_cpu`` (our CPU default)
makes each rank a CPU process and torch.distributed picks gloo. One prompt group of G = 4
completions is split 2 + 2 across the ranks, so the advantage estimator runs on the gathered
group. Checked: training finishes on both ranks, both ranks see the same curriculum order, each
generation batch is split across the ranks, exactly one checkpoint and one final judge are written.
"""

from __future__ import annotations

import json

from launch import launch_egt


def test_two_cpu_processes_train_with_the_same_curriculum(small_lab, tiny_judge_dir, tmp_path):
    ids = [f"rl_pool-{i:05d}" for i in range(8)]
    scores = [(7 * k % 8) / 8 for k in range(8)]  # sorted order: ids 0, 7, 6, 5, 4, 3, 2, 1
    (tmp_path / "curate").mkdir()
    (tmp_path / "curate" / "manifest.jsonl").write_text(
        "".join(
            json.dumps({"id": i, "scores": {"answer": s}, "kept": True, "rank": k, "by": "answer"}) + "\n"
            for k, (i, s) in enumerate(zip(ids, scores))
        )
    )
    out = tmp_path / "judge"
    launch_egt(
        [
            "train",
            "rl",
            "--model",
            str(tiny_judge_dir),
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
            "8",
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
