"""RL of the judge (EGT stage 2): TRL's ``GRPOTrainer`` with per-token advantages and an entropy curriculum.

:class:`JudgeGRPOTrainer` is a narrow subclass; TRL keeps generation, reward calls, the clipped loss
(every ``loss_type``), KL, vLLM, logging and checkpointing. What it changes:

1. ``_generate_and_score_completions`` calls TRL's, then replaces its ``[B]`` advantages with the
   chosen estimator's ``[B, T]`` ones (:mod:`egt.rl.advantages`: grpo, dr_grpo, gtpo, grpo_s). TRL's
   ``_compute_loss`` takes ``[B, T]`` advantages as they are (it unsqueezes only 1-D ones). The
   estimator runs on the whole generation batch gathered over processes, because a group's G
   completions may sit on different ranks; each rank keeps its own rows.
2. Entropies of the rollout policy (GTPO / GRPO-S only), without gradient. Every source computes
   the same thing from the policy's final hidden states h with :func:`egt.entropy.token_entropy_from_hidden`:
   the float32 entropy of ``softmax((h · Wᵀ + b) / τ)``, the LM head W run in float32 (a float32 copy
   of W, ``[V, h]``, for the duration of one pass when the model is bf16/fp16; never float32
   ``[B, T, V]`` logits), at the sampling temperature τ, with the tokens generation suppresses
   (TRL's ``suppress_tokens``: the image token of a VLM) at −inf. That is the distribution sampled
   from, up to history-dependent processors (``repetition_penalty``, ``no_repeat_ngram_size``,
   ``min_new_tokens``, …, none on by default) and the top-k / top-p / min-p truncation, which no
   source reflects. A forward hook on the backbone (:class:`RolloutEntropyRecorder`) reads h where
   the pass already computes it, from the cheapest pass available:

   a. TRL's own no-grad "old log-prob" forward, when it runs one (``gradient_accumulation_steps``
      not a multiple of ``steps_per_generation · num_iterations``, or vLLM importance sampling). Free
      but for the float32 LM head.
   b. Generation with transformers' ``generate``: each decoding step's last hidden state. Free but
      for the float32 LM head on one row per sequence per step.
   c. Otherwise (vLLM without importance sampling, continuous batching, tool calls): one extra
      no-grad forward over prompt + completion through TRL's forward helper (whose own log-probs
      are discarded), about a third of a training forward + backward.

   TRL's own entropies are not used: its fused LM head rounds the logits to the model's dtype
   before its float32 softmax, which in bf16, at a trained model's logit scale, moves the entropies
   by ~0.5–1.5% (median) and 3–7% (max) (docs/rl.md). Tests hold a, b and c to the float32 reference in a bf16 model, and b
   to c in float32; ``bench/rl_step_time.py`` measures the cost. ``correct`` (O+ / O−) is the
   accuracy reward > 0.5.
3. ``_get_train_sampler``: the curriculum (:mod:`egt.rl.curriculum`) — TRL's ``RepeatSampler`` with
   the index order replaced, identical on every rank, restartable per epoch.
4. ``_calculate_rewards``: a NaN / inf / None reward is an error naming the function and the ids.
5. Resume: TRL's micro-step counter is restored from the checkpoint's global step so a resumed run
   regenerates exactly where the uninterrupted one would.

DAPO options TRL lacks are added here: dynamic sampling as masking (groups with all-equal rewards
leave the loss and its token count; DAPO would also over-sample to refill the batch, TRL cannot),
and the soft overlong penalty (TRL's ``get_soft_overlong_punishment`` as one more reward).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import gather_object, is_peft_model
from torch.distributed.tensor import DTensor
from transformers import TrainerCallback
from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import maybe_gather_lm_head_ctx

from egt.entropy import token_entropy_from_hidden
from egt.errors import EgtError
from egt.rl.advantages import ADVANTAGE_ESTIMATORS, get_advantage_estimator
from egt.rl.curriculum import Curriculum, CurriculumSampler

ENTROPY_ESTIMATORS = ("gtpo", "grpo_s")
ESTIMATORS = (*ADVANTAGE_ESTIMATORS, "trl")
# inputs of TRL's forward helper that a generation batch may carry (as in GRPOTrainer._compute_loss)
_FORWARD_KEYS = (
    "pixel_values",
    "image_grid_thw",
    "num_images",
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
)


class RolloutEntropyRecorder:
    """Forward hook for the policy's backbone: float32 token entropies from its final hidden states.

    Each backbone call appends ``token_entropy_from_hidden(h, W, b, τ)`` of the positions whose next
    token the LM head scores: with ``keep=None`` (generation) the last position, ``[b]`` per decoding
    step; with ``keep=k`` (a forward over prompt + completion) the k positions that predict the
    completion, ``[b, k]`` per call, 0 where the attention mask is 0. W and b are the LM head's in
    float32 (copied once per recorder, gathered under ZeRO-3 / FSDP2); ``suppressed`` token ids get
    b = −inf, as generation's ``suppress_tokens`` does.
    """

    def __init__(
        self, head: torch.nn.Module, temperature: float, suppressed: Sequence[int] = (), keep: int | None = None
    ):
        self.head, self.temperature, self.suppressed, self.keep = head, temperature, list(suppressed), keep
        self.parts: list[torch.Tensor] = []  # [b] per step (keep=None) or [b, k] per call
        self._weight: torch.Tensor | None = None  # [V, h] float32
        self._bias: torch.Tensor | None = None  # [V] float32, or None

    def _float32_head(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._weight is None:
            weight, bias = self.head.weight, self.head.bias
            with maybe_gather_lm_head_ctx(weight, bias):
                if isinstance(weight, DTensor):
                    weight, bias = weight.full_tensor(), None if bias is None else bias.full_tensor()
                copy = is_deepspeed_zero3_enabled()  # the gathered weight is freed on leaving the block
                self._weight = weight.detach().to(torch.float32, copy=copy)  # [V, h]
                if bias is not None:
                    self._bias = bias.detach().to(torch.float32, copy=True)  # [V]
            if self.suppressed:
                if self._bias is None:
                    self._bias = self._weight.new_zeros(self._weight.shape[0])  # [V]
                self._bias[self.suppressed] = float("-inf")
        return self._weight, self._bias

    def __call__(self, module, args, kwargs, output) -> None:
        hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]  # [b, L, h]
        weight, bias = self._float32_head()
        mask = None
        if self.keep is None:
            rows = hidden[:, -1]  # [b, h], predicts the token sampled at this step
        else:
            rows = hidden[:, -self.keep - 1 : -1]  # [b, k, h], predict the k completion tokens
            attention = kwargs.get("attention_mask")
            if isinstance(attention, torch.Tensor) and attention.dim() == 2:
                mask = attention[:, -self.keep :] != 0  # [b, k]
        self.parts.append(
            token_entropy_from_hidden(rows, weight, mask=mask, lm_head_bias=bias, temperature=self.temperature)
        )


class JudgeGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` with EGT's advantage estimators and curriculum (module docstring).

    Args (beside ``GRPOTrainer``'s):
        advantage_estimator: ``grpo`` | ``dr_grpo`` | ``gtpo`` | ``grpo_s`` | ``trl`` (TRL's own).
        estimator_kwargs: scalar arguments of the estimator (``alpha1``, ``alpha2``, ``normalize``,
            ``beta1``, ``beta2``).
        correct_reward: name of the reward function whose value > 0.5 marks a response correct.
        curriculum: a :class:`Curriculum` over the training rows, or None for TRL's sampler.
        dynamic_sampling: mask groups whose rewards are all equal out of the loss (DAPO, no refill).
        record_dir: where each rank writes its curriculum order and the ids it consumed (None = off).
    """

    def __init__(
        self,
        *args,
        advantage_estimator: str = "grpo",
        estimator_kwargs: dict | None = None,
        correct_reward: str = "judge_accuracy",
        curriculum: Curriculum | None = None,
        dynamic_sampling: bool = False,
        record_dir: str | os.PathLike | None = None,
        **kwargs,
    ):
        if advantage_estimator not in ESTIMATORS:
            raise EgtError(
                f"field 'advantage_estimator': unknown estimator {advantage_estimator!r} ({' | '.join(ESTIMATORS)})"
            )
        self.advantage_estimator = advantage_estimator
        self.estimator_kwargs = dict(estimator_kwargs or {})
        self.correct_reward = correct_reward
        self.curriculum = curriculum
        self.dynamic_sampling = dynamic_sampling
        self.record_dir = Path(record_dir) if record_dir is not None else None
        self.consumed_ids: list[tuple[int, list[str]]] = []  # (global step, ids of this rank's generation batch)
        self.last_advantages: torch.Tensor | None = None  # [B, T] of the last generation batch
        self.last_trl_advantages: torch.Tensor | None = None  # [B], what TRL computed and we replaced
        self._rewards_per_func: torch.Tensor | None = None
        self._rollout_entropies: torch.Tensor | None = None
        self._capture_rollout_entropy = False
        self._generation_entropies: list[torch.Tensor] | None = None  # recorded during generate, or None
        super().__init__(*args, **kwargs)
        self._check_setup()

    # ---------------------------------------------------------------------------------------
    # checks before training
    # ---------------------------------------------------------------------------------------

    def _check_setup(self) -> None:
        args = self.args
        if args.generation_batch_size % self.num_generations:
            raise EgtError(
                f"group size num_generations = {self.num_generations} does not divide the generation batch "
                f"{args.generation_batch_size} (= per_device_train_batch_size {args.per_device_train_batch_size}"
                f" × processes {self.accelerator.num_processes} × steps_per_generation {args.steps_per_generation})"
            )
        if self.advantage_estimator == "trl":
            return
        if self.multi_objective_aggregation != "sum_then_normalize" or self.scale_rewards == "batch":
            raise EgtError(
                f"advantage_estimator {self.advantage_estimator!r} normalises per group of the weighted "
                "reward sum; for scale_rewards=batch or normalize_then_sum use advantage_estimator=trl"
            )
        if self.advantage_estimator in ENTROPY_ESTIMATORS and self.correct_reward not in self.reward_func_names:
            raise EgtError(
                f"advantage_estimator {self.advantage_estimator!r} needs the reward {self.correct_reward!r} "
                f"to tell correct responses; reward functions are {self.reward_func_names}"
            )

    # ---------------------------------------------------------------------------------------
    # curriculum
    # ---------------------------------------------------------------------------------------

    def _get_train_sampler(self, dataset=None):
        if self.curriculum is None:
            return super()._get_train_sampler(dataset)
        return CurriculumSampler(
            self.train_dataset if dataset is None else dataset,
            self.curriculum,
            mini_repeat_count=self.num_generations,
            batch_size=self.args.generation_batch_size // self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
            seed=self.args.seed,
            shuffle=self.shuffle_dataset,
            on_order=self._record_order,
        )

    def _row_ids(self) -> list[str]:
        dataset = self.train_dataset
        return (
            [str(i) for i in dataset["id"]] if "id" in dataset.column_names else [str(i) for i in range(len(dataset))]
        )

    def _record_order(self, epoch: int, order: list[int]) -> None:
        if self.record_dir is None:
            return
        ids = self._row_ids()
        path = self.record_dir / f"order.rank{self.accelerator.process_index}.epoch{epoch}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([ids[i] for i in order]))

    def _record_consumed(self, inputs: Sequence[dict]) -> None:
        ids = [str(x.get("id", "?")) for x in inputs]
        self.consumed_ids.append((self.state.global_step, ids))
        if self.record_dir is not None:
            self.record_dir.mkdir(parents=True, exist_ok=True)
            with open(self.record_dir / f"consumed.rank{self.accelerator.process_index}.jsonl", "a") as fh:
                fh.write(json.dumps({"step": self.state.global_step, "ids": ids}) + "\n")

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None:  # TRL restarts its micro-step counter at 0; continue it instead
            self._step = self.state.global_step * self.args.gradient_accumulation_steps
            self._buffered_inputs = None

    # ---------------------------------------------------------------------------------------
    # rewards, entropies, advantages
    # ---------------------------------------------------------------------------------------

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)  # [B_all, F]
        bad = ~torch.isfinite(rewards_per_func)
        if bad.any():  # rewards are gathered, so every rank takes this branch together
            ids = gather_object([str(x.get("id", "?")) for x in inputs])
            offenders: dict[str, list[str]] = {}
            for row, col in bad.nonzero().tolist():
                offenders.setdefault(self.reward_func_names[col], []).append(ids[row])
            detail = "; ".join(f"{name!r} for ids {sorted(set(rows))[:10]}" for name, rows in offenders.items())
            raise EgtError(f"step {self.state.global_step}: reward function returned NaN, inf or None: {detail}")
        self._rewards_per_func = rewards_per_func
        return rewards_per_func

    def _trl_runs_old_logps_pass(self) -> bool:
        """Mirror of TRL's condition for its no-grad old-log-prob forward (grpo_trainer, same version)."""
        generate_every = self.args.steps_per_generation * self.num_iterations
        return self.args.gradient_accumulation_steps % generate_every != 0 or (
            self.use_vllm and self.vllm_importance_sampling_correction
        )

    def _suppressed_tokens(self) -> list[int]:
        """Token ids transformers' ``generate`` masks to −inf at every step (TRL: a VLM's image token)."""
        if self.use_vllm:
            return []
        return list((getattr(self, "generation_kwargs", None) or {}).get("suppress_tokens") or [])

    @contextlib.contextmanager
    def _recording_rollout_entropies(self, keep: int | None = None) -> Iterator[RolloutEntropyRecorder]:
        """Hook a :class:`RolloutEntropyRecorder` onto the policy's backbone for the block."""
        model = self.accelerator.unwrap_model(self.model)
        if is_peft_model(model):
            model = model.get_base_model()
        head = model.get_output_embeddings()
        recorder = RolloutEntropyRecorder(head, self.temperature, self._suppressed_tokens(), keep)
        handle = model.base_model.register_forward_hook(recorder, with_kwargs=True)
        try:
            yield recorder
        finally:
            handle.remove()

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        if self._capture_rollout_entropy and model is self.model and not torch.is_grad_enabled():
            self._capture_rollout_entropy = False  # only TRL's first no-grad pass: the rollout policy
            with self._recording_rollout_entropies(keep=logits_to_keep) as recorder:
                result = super()._get_per_token_logps_and_entropies(
                    model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
                )
            self._rollout_entropies = torch.cat(recorder.parts, dim=0)  # [B, T]
            return result
        return super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
        )

    def _generate_single_turn(self, *args, **kwargs):
        if self._generation_entropies is None:
            return super()._generate_single_turn(*args, **kwargs)
        with self._recording_rollout_entropies() as recorder:
            result = super()._generate_single_turn(*args, **kwargs)
        if recorder.parts:
            self._generation_entropies.append(torch.stack(recorder.parts, dim=1))  # [B, T_generated]
        return result

    def _recorded_generation_entropies(self, output: dict) -> torch.Tensor | None:
        """``[B, T]`` entropies recorded while generating ``output``'s completions, if they line up."""
        recorded = self._generation_entropies
        if not recorded or len(recorded) != 1:  # nothing recorded, or several generate calls (tools)
            return None
        entropies = recorded[0].to(output["completion_ids"].device)  # [B, T_generated]
        rows, length = output["completion_ids"].shape
        if entropies.size(0) != rows:
            return None
        if entropies.size(1) < length:  # pad_to_multiple_of can pad past the last generated step
            entropies = torch.nn.functional.pad(entropies, (0, length - entropies.size(1)))
        return entropies[:, :length]

    def _rollout_entropy_pass(self, output: dict, mode: str) -> torch.Tensor:
        """``[B, T]`` entropies of the policy that generated ``output``: one no-grad forward."""
        batch_size = self.args.per_device_train_batch_size if mode == "train" else self.args.per_device_eval_batch_size
        input_ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)  # [B, P + T]
        attention_mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)  # [B, P + T]
        length = output["completion_ids"].size(1)
        extra = {k: output[k] for k in _FORWARD_KEYS if k in output}
        with (
            torch.no_grad(),
            disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),
            self._recording_rollout_entropies(keep=length) as recorder,
        ):
            super()._get_per_token_logps_and_entropies(
                self.model, input_ids, attention_mask, length, batch_size=batch_size, **extra
            )
        return torch.cat(recorder.parts, dim=0)  # [B, T]

    def _gather_rows(self, x: torch.Tensor) -> torch.Tensor:
        """``[B_local, T_local]`` on each rank → ``[B_all, T_max]`` (right-padded with 0), rank order."""
        return self.accelerator.gather(self.accelerator.pad_across_processes(x, dim=1, pad_index=0))

    def _generate_and_score_completions(self, inputs):
        mode = "train" if self.model.training else "eval"
        needs_entropy = self.advantage_estimator in ENTROPY_ESTIMATORS
        self._rollout_entropies = None
        self._capture_rollout_entropy = needs_entropy and self._trl_runs_old_logps_pass()
        record = (
            needs_entropy
            and not self._capture_rollout_entropy
            and not (self.use_vllm or self.use_transformers_continuous_batching or self.tools)
        )
        self._generation_entropies = [] if record else None
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            self._capture_rollout_entropy = False
        if mode == "train":
            self._record_consumed(inputs)
        self.last_trl_advantages = output["advantages"].detach()
        if self.advantage_estimator != "trl":
            mask = output["completion_mask"]  # [B, T]
            if "tool_mask" in output:
                mask = mask * output["tool_mask"]
            entropies = None
            if needs_entropy:
                entropies = self._rollout_entropies  # a: TRL's old-log-prob pass
                if entropies is None:
                    entropies = self._recorded_generation_entropies(output)  # b: recorded while sampling
                if entropies is None:
                    entropies = self._rollout_entropy_pass(output, mode)  # c: one more forward
            output["advantages"] = self._token_advantages(mask, entropies, mode)  # [B, T], what TRL's loss uses
        self._generation_entropies = None
        self.last_advantages = output["advantages"].detach()
        if self.dynamic_sampling and mode == "train":
            self._drop_tied_groups(output)
        return output

    def _token_advantages(self, mask: torch.Tensor, entropies: torch.Tensor | None, mode: str):
        """Per-token advantages ``[B_local, T]`` of this rank's rows, computed over the whole batch."""
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        per_func = self._rewards_per_func  # [B_all, F], gathered by TRL
        rewards = self._weighted_rewards()  # [B_all]
        local_rows, local_len = mask.shape
        mask_all = self._gather_rows(mask)  # [B_all, T_max]
        estimator = get_advantage_estimator(self.advantage_estimator)
        if self.advantage_estimator in ENTROPY_ESTIMATORS:
            correct = per_func[:, self.reward_func_names.index(self.correct_reward)] > 0.5  # [B_all]
            entropy_all = self._gather_rows(entropies.float())  # [B_all, T_max]
            advantages = estimator(rewards, correct, entropy_all, mask_all, group_size, **self.estimator_kwargs)
            valid = mask_all != 0
            self._metrics[mode]["rollout_entropy/mean"].append(
                (entropy_all[valid].mean() if valid.any() else entropy_all.new_zeros(())).item()
            )
        elif self.advantage_estimator == "grpo":
            scale = self.estimator_kwargs.get("scale_by_std", self.scale_rewards != "none")
            advantages = estimator(rewards, mask_all, group_size, scale_by_std=scale)
        else:
            advantages = estimator(rewards, mask_all, group_size, **self.estimator_kwargs)
        rank = self.accelerator.process_index
        advantages = advantages[rank * local_rows : (rank + 1) * local_rows, :local_len]  # [B_local, T]
        valid = mask != 0
        self._metrics[mode]["advantages/abs_mean"].append(
            (advantages[valid].abs().mean() if valid.any() else advantages.new_zeros(())).item()
        )
        return advantages

    def _weighted_rewards(self) -> torch.Tensor:
        """``[B_all]`` total reward of each completion: TRL's weighted sum of the reward functions."""
        per_func = self._rewards_per_func  # [B_all, F]
        return (per_func * self.reward_weights.to(per_func.device).unsqueeze(0)).nansum(dim=1)

    def _drop_tied_groups(self, output: dict) -> None:
        """DAPO dynamic sampling as masking: groups of equal rewards leave the loss and its token count."""
        grouped = self._weighted_rewards().view(-1, self.num_generations)  # [n_groups, G]
        tied = (grouped == grouped[:, :1]).all(dim=1)  # [n_groups]
        local_rows = output["completion_mask"].size(0)
        rank = self.accelerator.process_index
        keep = ~tied.repeat_interleave(self.num_generations)[rank * local_rows : (rank + 1) * local_rows]  # [B]
        output["completion_mask"] = output["completion_mask"] * keep.unsqueeze(1).to(output["completion_mask"].dtype)
        loss_mask = output["completion_mask"]
        if "tool_mask" in output:
            loss_mask = loss_mask * output["tool_mask"]
        output["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        self._metrics["train"]["dynamic_sampling/frac_groups_dropped"].append(tied.float().mean().item())


class TimeLimit(TrainerCallback):
    """Stop training after ``seconds`` of wall-clock time, checked after each optimiser step; rank 0's
    clock decides for all ranks (a rank stopping alone would hang the others)."""

    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        stop = self.start is not None and time.perf_counter() - self.start >= self.seconds
        distributed = torch.distributed
        if distributed.is_available() and distributed.is_initialized():
            flag = torch.tensor([float(stop)], device="cuda" if distributed.get_backend() == "nccl" else "cpu")
            distributed.broadcast(flag, src=0)
            stop = bool(flag.item())
        if stop:
            control.should_training_stop = True


# --------------------------------------------------------------------------------------------
# Data and the training entry point
# --------------------------------------------------------------------------------------------


def presentation_rows(pairs, presentation: str, seed: int) -> list[tuple[int, bool]]:
    """``(pair_index, swapped)`` per training row: stored | random (seeded coin per id, as evaluation) | both."""
    from egt.evaluation.runner import presentations

    if presentation not in ("stored", "random", "both"):
        raise EgtError(f"field 'presentation': unknown presentation {presentation!r} (stored | random | both)")
    return presentations(pairs, presentation, seed)


def build_rl_dataset(pairs, rows: Sequence[tuple[int, bool]], images_root, style: str, is_vision: bool):
    """A conversational prompt-only ``datasets.Dataset`` for GRPO: ``prompt``, ``images`` (VLM),
    and the reward columns ``id``, ``preferred`` (stored-order label), ``swapped``."""
    import datasets

    from egt.judge.prompt import judge_prompt
    from egt.records import open_images

    records, images_cache = [], {}
    for index, swapped in rows:
        pair = pairs[index]
        record: dict[str, Any] = {"id": pair.id, "preferred": pair.preferred, "swapped": bool(swapped)}
        images = None
        if is_vision:
            if index not in images_cache:
                images_cache[index] = open_images(pair, images_root)
            images = record["images"] = images_cache[index]
        record["prompt"] = judge_prompt(
            pair.question, pair.responses, swapped, style, None if images is None else len(images)
        )
        records.append(record)
    return datasets.Dataset.from_list(records)


def _resume_value(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.lower() in ("", "false", "0", "no", "none"):
        return None
    return value


def checkpoint_dir(output_dir: str | Path) -> Path:
    """Checkpoints live beside the final judge, so the judge folder appears atomically at the end."""
    out = Path(output_dir)
    return out.with_name(out.name + ".checkpoints")


def _log_means(history: list[dict], key: str, n: int) -> tuple[float | None, float | None]:
    values = [h[key] for h in history if h.get(key) is not None]
    if not values:
        return None, None
    n = max(1, min(n, len(values) // 2 or 1))
    return round(sum(values[:n]) / n, 4), round(sum(values[-n:]) / n, 4)


def train_judge_rl(args, config) -> dict:
    """Run RL of the judge; the trained judge lands atomically in ``config.output_dir``.

    ``args`` is :class:`egt.rl.config.JudgeRLArgs`, ``config`` a TRL ``GRPOConfig``. Checkpoints go
    to ``<output_dir>.checkpoints`` (resume with ``resume_from_checkpoint: true`` or a path).
    Bad input fails before training: unknown model folder, manifest ids missing from the data,
    a curriculum without a manifest, a group size that does not divide the batch.
    """
    from transformers import AutoConfig

    import egt.models.tiny  # noqa: F401  (registers the tiny processor with AutoProcessor)
    from egt.judge.generative import JUDGE_META_FILE, read_judge_meta
    from egt.records import default_images_root, read_pairs
    from egt.rl.curriculum import kept_order_keys, manifest_path, read_manifest
    from egt.rl.rewards import judge_reward_functions, make_logic_checker

    start = time.perf_counter()
    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        raise EgtError(f"{args.model}: not a model folder (no config.json); train one with 'egt train sft'")
    is_vision = getattr(AutoConfig.from_pretrained(args.model), "vision_config", None) is not None
    meta = read_judge_meta(model_dir)
    style = args.prompt_style or meta.get("prompt_style", "r1_reward")

    pairs = read_pairs(args.data)
    if args.limit:
        pairs = pairs[: args.limit]
    images_root = args.images_dir or default_images_root(args.data)
    scores_by_pair = None
    if args.manifest:
        positions, scores = kept_order_keys(
            read_manifest(args.manifest),
            [p.id for p in pairs],
            args.curriculum_by,
            source=str(manifest_path(args.manifest)),
        )
        pairs = [pairs[i] for i in positions]
        scores_by_pair = scores
    elif args.curriculum != "off":
        raise EgtError(
            f"curriculum {args.curriculum!r} orders by the curation manifest's entropy; "
            "pass --manifest DIR, or --curriculum off"
        )
    rows = presentation_rows(pairs, args.presentation, config.seed)
    dataset = build_rl_dataset(pairs, rows, images_root, style, is_vision)
    curriculum = Curriculum(
        args.curriculum,
        [scores_by_pair[i] for i, _ in rows] if scores_by_pair else [],
        args.curriculum_stages,
        ids=[pairs[i].id for i, _ in rows],
    )

    checker = make_logic_checker(
        args.logic_checker, n_sentences=args.logic_sentences, endpoint=args.logic_endpoint, model=args.logic_model
    )
    reward_funcs, weights = judge_reward_functions(args.format_weight, args.logic_weight, checker)
    if args.overlong_buffer > 0:
        from trl.rewards import get_soft_overlong_punishment

        reward_funcs.append(get_soft_overlong_punishment(config.max_completion_length, args.overlong_buffer))
        weights.append(1.0)
    if config.reward_weights is not None and list(config.reward_weights) != weights:
        raise EgtError("set format_weight / logic_weight instead of reward_weights (the judge reward fixes them)")
    config.reward_weights = weights
    if config.model_init_kwargs is None:
        config.model_init_kwargs = {"dtype": args.dtype}

    final_dir = Path(config.output_dir)
    config.output_dir = str(checkpoint_dir(final_dir))
    estimator_kwargs = {
        "gtpo": dict(alpha1=args.gtpo_alpha1, alpha2=args.gtpo_alpha2, normalize=args.gtpo_normalize),
        "grpo_s": dict(beta1=args.grpo_s_beta1, beta2=args.grpo_s_beta2),
    }.get(args.advantage_estimator, {})
    trainer = JudgeGRPOTrainer(
        model=str(model_dir),
        reward_funcs=reward_funcs,
        args=config,
        train_dataset=dataset,
        advantage_estimator=args.advantage_estimator,
        estimator_kwargs=estimator_kwargs,
        correct_reward=args.correct_reward,
        curriculum=curriculum,
        dynamic_sampling=args.dynamic_sampling,
        record_dir=Path(config.output_dir) / "curriculum" if args.save_curriculum_order else None,
        callbacks=[TimeLimit(args.time_limit_seconds)] if args.time_limit_seconds > 0 else None,
    )
    result = trainer.train(resume_from_checkpoint=_resume_value(config.resume_from_checkpoint))
    config.output_dir = str(final_dir)

    history = trainer.state.log_history
    reward_first, reward_last = _log_means(history, "reward", 5)
    accuracy_first, accuracy_last = _log_means(history, "rewards/judge_accuracy/mean", 5)
    summary = {
        "n_pairs": len(pairs),
        "n_rows": len(dataset),
        "estimator": args.advantage_estimator,
        "curriculum": args.curriculum,
        "loss_type": config.loss_type,
        "steps": trainer.state.global_step,
        "reward_first": reward_first,
        "reward_last": reward_last,
        "accuracy_first": accuracy_first,
        "accuracy_last": accuracy_last,
        "train_seconds": round(result.metrics.get("train_runtime", 0.0), 1),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "processes": trainer.accelerator.num_processes,
    }
    partial = final_dir.with_name(final_dir.name + ".partial")  # one name all ranks agree on
    trainer.save_model(str(partial))  # every rank: gathers ZeRO-3 / FSDP shards; rank 0 writes
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(partial)
        (partial / JUDGE_META_FILE).write_text(
            json.dumps(
                {
                    "prompt_style": style,
                    "max_new_tokens": args.max_new_tokens or config.max_completion_length,
                    "trained_by": "egt train rl",
                }
            )
        )
        (partial / "rl_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if final_dir.is_dir():
            shutil.rmtree(final_dir)
        os.replace(partial, final_dir)
        if not args.keep_checkpoints:
            shutil.rmtree(checkpoint_dir(final_dir), ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return summary
