"""Dynamic sampling on the tiny judge with a scripted reward, in one process or under ``accelerate launch``.

Run by tests/rl/test_accelerate.py (not a test module itself)::

    python tests/rl/scripted_dynamic_sampling.py LAB JUDGE OUT PER_DEVICE_BATCH

8 pool items in a sorted curriculum o0 … o7, G = 4, 2 prompts per generation batch (whatever the
process count: PER_DEVICE_BATCH · processes = 8), ``max_generation_batches`` 3; the scripted accuracy is
1 for every rollout of o0, o2 and o3 (uniform groups) and 0, 1, 0, 1 for the others. Each rank writes
``OUT.rank<r>.json``: the dynamic-sampling log, every row it generated and every row it trained on
(id, prompt and completion tokens, advantage sum), so the test can check that the rows moved between
ranks arrived intact.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rows_of(batch: dict, ids: list[str]) -> list[list]:
    """``[id, prompt tokens, completion tokens, advantage sum]`` per row (padding stripped)."""
    out = []
    for k, rid in enumerate(ids):
        prompt = batch["prompt_ids"][k][batch["prompt_mask"][k] != 0].tolist()
        completion = batch["completion_ids"][k][batch["completion_mask"][k] != 0].tolist()  # [] when masked
        out.append([rid, prompt, completion, round(float(batch["advantages"][k].sum()), 4)])
    return out


def main(lab: str, judge: str, out: str, per_device: int) -> None:
    import torch
    from trl import GRPOConfig

    import egt.models.tiny  # noqa: F401  (registers the tiny judge's processor with AutoProcessor)
    from egt.records import read_pairs
    from egt.rl.config import cpu_rl_defaults
    from egt.rl.curriculum import Curriculum
    from egt.rl.dataset import build_rl_dataset, presentation_rows
    from egt.rl.trainer import JudgeGRPOTrainer

    torch.set_num_threads(1)
    pairs = read_pairs(Path(lab) / "rl_pool.jsonl")[:8]
    ids = [p.id for p in pairs]
    scores = [0.1 * ((3 * k) % 8) for k in range(8)]
    order = [ids[k] for k in sorted(range(8), key=lambda k: scores[k])]
    uniform = {order[0], order[2], order[3]}

    def judge_accuracy(prompts, completions, id, **kwargs):
        return [1.0 if i in uniform else float(k % 2) for k, i in enumerate(id)]

    class Recorder(JudgeGRPOTrainer):
        generated: list = []
        trained: list = []

        def _score_generation(self, inputs, mode):
            output = super()._score_generation(inputs, mode)
            self.generated += rows_of(output, [x["id"] for x in inputs])
            return output

        def _dynamic_sampling_batch(self):
            batch = super()._dynamic_sampling_batch()
            self.trained += rows_of(batch, self.consumed_ids[-1][1])
            return batch

    dataset = build_rl_dataset(pairs, presentation_rows(pairs, "random", 0), lab, "compact", True)
    config = GRPOConfig(
        **{
            **cpu_rl_defaults(),
            "output_dir": f"{out}.run",
            "max_steps": 2,
            "per_device_train_batch_size": per_device,
            "num_generations": 4,
            "max_completion_length": 6,
        }
    )
    trainer = Recorder(
        model=judge,
        reward_funcs=[judge_accuracy],
        args=config,
        train_dataset=dataset,
        advantage_estimator="grpo",
        curriculum=Curriculum("sorted", scores, ids=ids),
        dynamic_sampling=True,
        max_generation_batches=3,
    )
    trainer.train()
    rank = trainer.accelerator.process_index
    result = {
        "order": order,
        "log": trainer.dynamic_sampling_log,
        "generated": trainer.generated,
        "trained": trainer.trained,
        "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
    }
    Path(f"{out}.rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
