"""RL of the judge (EGT stage 2): TRL's ``GRPOTrainer`` with per-token advantages and an entropy curriculum.

:class:`JudgeGRPOTrainer` is a narrow subclass; TRL keeps generation, reward calls, the clipped loss
(every ``loss_type``), KL, vLLM, logging and checkpointing. What it changes:

1. ``_generate_and_score_completions`` calls TRL's, then replaces its ``[B]`` advantages with the
   chosen estimator's ``[B, T]`` ones, through :func:`egt.rl.estimators.compute_advantages` (any
   registered name: grpo, dr_grpo, gtpo, grpo_s; ``trl`` keeps TRL's own). TRL's ``_compute_loss``
   takes ``[B, T]`` advantages as they are (it unsqueezes only 1-D ones). The estimator runs on the
   whole generation batch gathered over processes, because a group's G completions may sit on
   different ranks; each rank keeps its own rows.
2. Entropies of the rollout policy, when the estimator needs them (``needs_entropy`` in
   :mod:`egt.rl.estimators`), without gradient: float32, at the sampling temperature, from the
   policy's final hidden states (:class:`egt.rl.rollout_entropy.RolloutEntropyRecorder`, a forward
   hook on the backbone), read where a pass already computes them, from the cheapest pass available:

   a. TRL's own no-grad "old log-prob" forward, when it runs one (``gradient_accumulation_steps``
      not a multiple of ``steps_per_generation · num_iterations``, or vLLM importance sampling). Free
      but for the float32 LM head.
   b. Generation with transformers' ``generate``: each decoding step's last hidden state. Free but
      for the float32 LM head on one row per sequence per step.
   c. Otherwise (vLLM without importance sampling, continuous batching, tool calls): one extra
      no-grad forward over prompt + completion through TRL's forward helper (whose own log-probs
      are discarded), about a third of a training forward + backward.

   Tests hold a, b and c to the float32 reference in a bf16 model, and b to c in float32;
   ``bench/rl_step_time.py`` measures the cost. ``correct`` (O+ / O−) is the accuracy reward > 0.5.
3. ``_get_train_sampler``: the curriculum (:mod:`egt.rl.curriculum`) — TRL's ``RepeatSampler`` with
   the index order replaced, identical on every rank, restartable per epoch.
4. ``_calculate_rewards``: a NaN / inf / None reward is an error naming the function and the ids.
5. Resume: TRL's micro-step counter is restored from the checkpoint's global step so a resumed run
   regenerates exactly where the uninterrupted one would.
6. ``_generate_single_turn``, colocated vLLM with images: vLLM gets the prompt with one image
   placeholder per image (it expands them itself; TRL 1.16 sends the processor-expanded ids, TRL
   issue 6294), the training forward keeps the expanded ids (:mod:`egt.rl.vllm_prompts`).

DAPO options TRL lacks are added here: dynamic sampling as masking (groups with all-equal rewards
leave the loss and its token count; DAPO would also over-sample to refill the batch, TRL cannot),
and the soft overlong penalty (TRL's ``get_soft_overlong_punishment`` as one more reward).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from accelerate.utils import gather_object, is_peft_model
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing

from egt.errors import EgtError
from egt.models.generation import reset_generation_config
from egt.models.training import ensure_float32_masters, trainer_keeps_masters
from egt.rl.curriculum import Curriculum, CurriculumSampler
from egt.rl.estimators import (
    ADVANTAGE_ESTIMATORS,
    AdvantageEstimator,
    check_params,
    compute_advantages,
    get_advantage_estimator,
)
from egt.rl.rollout_entropy import RolloutEntropyRecorder
from egt.rl.vllm_prompts import collapse_image_placeholders

TRL_ADVANTAGES = "trl"  # keep TRL's own [B] advantages (scale_rewards=batch, normalize_then_sum, …)
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


class JudgeGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` with EGT's advantage estimators and curriculum (module docstring).

    Args (beside ``GRPOTrainer``'s):
        advantage_estimator: a name registered in :mod:`egt.rl.estimators` (``grpo`` | ``dr_grpo`` |
            ``gtpo`` | ``grpo_s``) or ``trl`` (TRL's own advantages).
        estimator_kwargs: the estimator's parameters (``alpha1``, ``alpha2``, ``normalize``, ``beta1``,
            ``beta2``); ``scale_by_std``, when the estimator has it, defaults to TRL's ``scale_rewards``.
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
        known = (*ADVANTAGE_ESTIMATORS, TRL_ADVANTAGES)
        if advantage_estimator not in known:
            raise EgtError(
                f"field 'advantage_estimator': unknown estimator {advantage_estimator!r} ({' | '.join(known)})"
            )
        self.advantage_estimator = advantage_estimator  # may be switched between steps (bench/rl_step_time.py)
        self.estimator_kwargs = dict(estimator_kwargs or {})
        if advantage_estimator != TRL_ADVANTAGES:
            try:
                check_params(advantage_estimator, self.estimator_kwargs)
            except ValueError as error:
                raise EgtError(f"estimator_kwargs: {error}") from None
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
        ensure_float32_masters(self.model, engine_keeps_masters=trainer_keeps_masters(self))
        reset_generation_config(self.model)  # TRL sets every sampling value; nothing inherited

    @property
    def estimator(self) -> AdvantageEstimator | None:
        """The registry entry of ``advantage_estimator``; None for TRL's own advantages."""
        if self.advantage_estimator == TRL_ADVANTAGES:
            return None
        return get_advantage_estimator(self.advantage_estimator)

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
        if self.estimator is None:
            return
        if self.multi_objective_aggregation != "sum_then_normalize" or self.scale_rewards == "batch":
            raise EgtError(
                f"advantage_estimator {self.advantage_estimator!r} normalises per group of the weighted "
                "reward sum; for scale_rewards=batch or normalize_then_sum use advantage_estimator=trl"
            )
        if self.estimator.needs_entropy and self.correct_reward not in self.reward_func_names:
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

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if self.use_vllm and self.vllm_mode == "colocate" and images is not None:
            prompt_ids = self._vllm_prompt_ids(prompt_ids, images)  # TRL's vLLM branch uses them for the call only
        args = (prompt_ids, images, multimodal_fields, num_generations)
        if self._generation_entropies is None:
            return super()._generate_single_turn(*args, has_tool_images=has_tool_images)
        with self._recording_rollout_entropies() as recorder:
            result = super()._generate_single_turn(*args, has_tool_images=has_tool_images)
        if recorder.parts:
            self._generation_entropies.append(torch.stack(recorder.parts, dim=1))  # [B, T_generated]
        return result

    def _vllm_prompt_ids(self, prompt_ids: list[list[int]], images: list[list | None]) -> list[list[int]]:
        """The prompts for colocated vLLM: one image placeholder per image, as vLLM expands them itself.

        TRL 1.16 hands vLLM the processor-expanded ids (TRL issue 6294; :mod:`egt.rl.vllm_prompts`).
        Server mode is left alone: there TRL pairs server-processed image features with the *runs*
        of image tokens in the expanded ids (``VLLMGeneration._place_features``) and the server
        generates from the ids as given, so they must stay expanded.
        """
        image_token_id = getattr(self.processing_class, "image_token_id", None)
        if image_token_id is None:  # not a processor with a single image placeholder token
            return prompt_ids
        config = self.model.config
        return [
            collapse_image_placeholders(
                ids,
                image_token_id,
                n_images=len(imgs) if imgs else 0,
                vision_start_id=getattr(config, "vision_start_token_id", None),
                vision_end_id=getattr(config, "vision_end_token_id", None),
            )
            for ids, imgs in zip(prompt_ids, images, strict=True)
        ]

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
        needs_entropy = self.estimator is not None and self.estimator.needs_entropy
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
        if self.estimator is not None:
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
        params = dict(self.estimator_kwargs)
        if "scale_by_std" in self.estimator.params:
            params.setdefault("scale_by_std", self.scale_rewards != "none")
        correct = entropy_all = None
        if self.estimator.needs_entropy:
            correct = per_func[:, self.reward_func_names.index(self.correct_reward)] > 0.5  # [B_all]
            entropy_all = self._gather_rows(entropies.float())  # [B_all, T_max]
            valid = mask_all != 0
            self._metrics[mode]["rollout_entropy/mean"].append(
                (entropy_all[valid].mean() if valid.any() else entropy_all.new_zeros(())).item()
            )
        advantages = compute_advantages(
            self.advantage_estimator, rewards, mask_all, group_size, correct=correct, entropies=entropy_all, **params
        )  # [B_all, T_max]
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
