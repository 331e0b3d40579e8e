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

7. DAPO dynamic sampling with refill (``dynamic_sampling``; :mod:`egt.rl.dynamic_sampling`), which TRL
   lacks. ``_generate_and_score_completions`` then ignores the dataloader's batch and draws prompts
   from :class:`egt.rl.curriculum.PromptStream` — the sampler's batches in the sampler's order, so the
   curriculum holds — one generation batch per round: generate, score, compute advantages (groups
   never interact, so per round is the same as on the final batch), drop the groups uniform in the
   chosen metric, until the kept groups fill the batch or ``max_generation_batches`` rounds ran; the
   batch is the first kept groups in order, padded (when the rounds ran out) with uniform groups
   masked out of the loss. Each rank generates its slice of every round, and the rows of the final
   batch move to the rank that trains them (``gather_object``), so the trained batch is the same set
   of groups whatever the process count. The stream's cursor is saved with each checkpoint.
8. StableReinforce (R1-Reward; :mod:`egt.rl.stable_reinforce`): ``ratio_preclip`` clamps TRL's
   log-ratio before its exponential and clip. TRL forms ``per_token_logps − old_per_token_logps``
   inside ``_compute_loss``, with no hook of its own, so ``_compute_loss`` hands the old log-probs to
   ``_get_per_token_logps_and_entropies``, which returns the log-probs moved by
   :func:`~egt.rl.stable_reinforce.preclip_logps` (bit-identical wherever the ratio is inside
   ``[1/R, R]``). When TRL has no old log-probs (one update per generation, aligned) the ratio is 1
   and nothing is clipped. With ``beta > 0`` the KL term, and with ``off_policy_mask_threshold`` the
   off-policy mask, see the moved log-probs too (only at tokens whose ratio left ``[1/R, R]``).
   ``advantage_filter_sigma`` standardises the generation batch's advantages over its tokens
   (gathered over processes) and zeroes the outliers.

The soft overlong penalty is TRL's ``get_soft_overlong_punishment`` as one more reward (the recipe).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from accelerate.utils import gather_object, is_peft_model
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import split_pixel_values_by_grid, unsplit_pixel_values_by_grid

from egt.errors import EgtError
from egt.models.generation import reset_generation_config
from egt.models.training import ConvertedCheckpointMixin, ensure_float32_masters, trainer_keeps_masters
from egt.rl.curriculum import Curriculum, CurriculumSampler, PromptStream
from egt.rl.dynamic_sampling import METRICS, ListEntry, fill_plan, merge_rows, split_rows, uniform_groups
from egt.rl.estimators import (
    ADVANTAGE_ESTIMATORS,
    AdvantageEstimator,
    check_params,
    compute_advantages,
    get_advantage_estimator,
)
from egt.rl.rollout_entropy import RolloutEntropyRecorder
from egt.rl.stable_reinforce import filter_advantages, preclip_logps
from egt.rl.vllm_prompts import collapse_image_placeholders

logger = logging.getLogger(__name__)

TRL_ADVANTAGES = "trl"  # keep TRL's own [B] advantages (scale_rewards=batch, normalize_then_sum, …)
PRECLIP_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "luspo", "sapo")  # the loss uses exp(log-ratio) only
STATE_FILE = "egt_rl_state.json"  # in each checkpoint: the dynamic-sampling prompt stream's cursor
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


class JudgeGRPOTrainer(ConvertedCheckpointMixin, GRPOTrainer):
    """``GRPOTrainer`` with EGT's advantage estimators and curriculum (module docstring).

    Args (beside ``GRPOTrainer``'s):
        advantage_estimator: a name registered in :mod:`egt.rl.estimators` (``grpo`` | ``dr_grpo`` |
            ``gtpo`` | ``grpo_s``) or ``trl`` (TRL's own advantages).
        estimator_kwargs: the estimator's parameters (``alpha1``, ``alpha2``, ``normalize``, ``beta1``,
            ``beta2``); ``scale_by_std``, when the estimator has it, defaults to TRL's ``scale_rewards``.
        correct_reward: name of the reward function whose value > 0.5 marks a response correct.
        curriculum: a :class:`Curriculum` over the training rows, or None for TRL's sampler.
        dynamic_sampling: DAPO dynamic sampling with refill (module docstring, 7).
        dynamic_sampling_metric: ``reward`` (the weighted total) or ``accuracy`` (``correct_reward``):
            the value whose equality over a group's rollouts drops the group.
        max_generation_batches: most generation rounds per batch under dynamic sampling (≥ 1).
        ratio_preclip: StableReinforce's R (0 = off; R1-Reward 1000): log-ratio clamped to ±log R.
        advantage_filter_sigma: StableReinforce's S (0 = off; R1-Reward 3).
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
        dynamic_sampling_metric: str = "reward",
        max_generation_batches: int = 10,
        ratio_preclip: float = 0.0,
        advantage_filter_sigma: float = 0.0,
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
        if dynamic_sampling_metric not in METRICS:
            raise EgtError(
                f"field 'dynamic_sampling_metric': unknown metric {dynamic_sampling_metric!r} ({' | '.join(METRICS)})"
            )
        if max_generation_batches < 1:
            raise EgtError(f"field 'max_generation_batches': must be >= 1, got {max_generation_batches}")
        if ratio_preclip and not ratio_preclip > 1:
            raise EgtError(f"field 'ratio_preclip': must be 0 (off) or > 1, got {ratio_preclip}")
        if advantage_filter_sigma < 0:
            raise EgtError(f"field 'advantage_filter_sigma': must be 0 (off) or > 0, got {advantage_filter_sigma}")
        self.dynamic_sampling_metric = dynamic_sampling_metric
        self.max_generation_batches = max_generation_batches
        self.ratio_preclip = ratio_preclip  # may be switched between steps (bench/rl_stable_reinforce.py)
        self.advantage_filter_sigma = advantage_filter_sigma
        self.dynamic_sampling_log: list[dict] = []  # per generation: rounds, groups kept / generated, ids
        self.curriculum_log: list[dict] = []  # per generation: {"step", "epoch", "position"}
        self._prompt_stream: PromptStream | None = None
        self._resume_cursor: int | None = None
        self._preclip: tuple[torch.Tensor, torch.Tensor] | None = None
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
        if self.ratio_preclip and self.loss_type not in PRECLIP_LOSS_TYPES:
            raise EgtError(
                f"ratio_preclip clamps the ratio of a ratio loss ({' | '.join(PRECLIP_LOSS_TYPES)}); loss_type "
                f"{self.loss_type!r} uses the log-probs themselves"
            )
        if self.dynamic_sampling:
            if self.dynamic_sampling_metric == "accuracy" and self.correct_reward not in self.reward_func_names:
                raise EgtError(
                    f"dynamic_sampling_metric accuracy reads the reward {self.correct_reward!r}; reward functions "
                    f"are {self.reward_func_names}"
                )
            if self.estimator is None and (
                self.multi_objective_aggregation != "sum_then_normalize" or self.scale_rewards == "batch"
            ):
                raise EgtError(
                    "dynamic_sampling computes advantages per generation round; scale_rewards=batch and "
                    "normalize_then_sum normalise over the whole batch, which refill changes"
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
            path = Path(checkpoint) / STATE_FILE
            if path.is_file():
                self._resume_cursor = json.loads(path.read_text()).get("prompt_stream_cursor")
                if self._prompt_stream is not None and self._resume_cursor is not None:
                    self._prompt_stream.cursor = self._resume_cursor

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self._prompt_stream is not None and self.args.should_save:
            folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            (folder / STATE_FILE).write_text(json.dumps({"prompt_stream_cursor": self._prompt_stream.cursor}))

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

    def _compute_loss(self, model, inputs):
        old = inputs.get("old_per_token_logps")
        if self.ratio_preclip and old is not None:  # without old log-probs TRL's ratio is exactly 1
            mask = (
                inputs["completion_mask"]
                if "tool_mask" not in inputs
                else inputs["completion_mask"] * inputs["tool_mask"]
            )
            self._preclip = (old, mask)
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._preclip = None

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        if self._preclip is not None:  # the loss's own forward (the only call inside _compute_loss)
            old, mask = self._preclip
            self._preclip = None
            logps, *rest = super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
            )
            moved = preclip_logps(logps, old, self.ratio_preclip)  # [B, T]
            counts = torch.stack([((moved != logps) & (mask != 0)).sum(), (mask != 0).sum()]).float()
            clipped, total = self.accelerator.reduce(counts, reduction="sum").tolist()
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["stable_reinforce/preclip_frac"].append(clipped / max(total, 1.0))
            return (moved, *rest)
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
        if mode == "train" and self.dynamic_sampling:
            output = self._dynamic_sampling_batch()
        else:
            output = self._score_generation(inputs, mode)
            if mode == "train":
                self._record_consumed(inputs)
                self._record_curriculum_position()
        if mode == "train" and self.advantage_filter_sigma:
            output["advantages"] = self._filtered_advantages(output)  # [B, T]
        self.last_advantages = output["advantages"].detach()
        return output

    def _score_generation(self, inputs, mode: str) -> dict:
        """One generation batch through TRL (generate, reward, its advantages), then ours replace TRL's."""
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
        return output

    def _loss_mask(self, output: dict) -> torch.Tensor:
        mask = output["completion_mask"]  # [B, T]
        return mask * output["tool_mask"] if "tool_mask" in output else mask

    def _filtered_advantages(self, output: dict) -> torch.Tensor:
        """StableReinforce's advantage filter over the whole generation batch, gathered; this rank's ``[B, T]``."""
        mask = self._loss_mask(output)  # [B_local, T]
        advantages = output["advantages"]
        if advantages.dim() == 1:  # TRL's own [B]: one value per response, broadcast to its tokens
            advantages = advantages[:, None].expand(mask.shape)
        local_rows, local_len = mask.shape
        filtered = filter_advantages(
            self._gather_rows(advantages.float()), self._gather_rows(mask), self.advantage_filter_sigma
        )  # [B_all, T_max]
        rank = self.accelerator.process_index
        filtered = filtered[rank * local_rows : (rank + 1) * local_rows, :local_len]  # [B_local, T]
        valid = mask != 0
        dropped = (valid & (filtered == 0) & (advantages != 0)).sum()
        counts = self.accelerator.reduce(torch.stack([dropped, valid.sum()]).float(), reduction="sum").tolist()
        self._metrics["train"]["stable_reinforce/advantages_zeroed_frac"].append(counts[0] / max(counts[1], 1.0))
        return filtered

    # ---------------------------------------------------------------------------------------
    # curriculum position and dynamic sampling
    # ---------------------------------------------------------------------------------------

    def _prompts_per_generation(self) -> int:
        return self.args.generation_batch_size // self.num_generations

    def _record_curriculum_position(self) -> None:
        """Where TRL's sampler is in the subset: pass and prompts of it consumed, from the generation count."""
        per_batch = self._prompts_per_generation()
        batches_per_pass = max(1, len(self.train_dataset) // per_batch)
        generation = self._step // (self.args.steps_per_generation * self.num_iterations)
        epoch, within = divmod(generation, batches_per_pass)
        self._log_curriculum(epoch, (within + 1) * per_batch)

    def _log_curriculum(self, epoch: int, position: int) -> None:
        self.curriculum_log.append({"step": self.state.global_step, "epoch": epoch, "position": position})
        self._metrics["train"]["curriculum/epoch"].append(float(epoch))
        self._metrics["train"]["curriculum/position"].append(float(position))

    def _stream(self) -> PromptStream:
        if self._prompt_stream is None:
            self._prompt_stream = PromptStream(
                self.curriculum,
                len(self.train_dataset),
                self._prompts_per_generation(),
                seed=self.args.seed,
                shuffle=self.shuffle_dataset,
            )
            if self._resume_cursor is not None:
                self._prompt_stream.cursor = self._resume_cursor
        return self._prompt_stream

    def _dynamic_sampling_values(self) -> torch.Tensor:
        """``[B_all]`` the metric whose equality over a group drops it: total reward or accuracy."""
        if self.dynamic_sampling_metric == "accuracy":
            return self._rewards_per_func[:, self.reward_func_names.index(self.correct_reward)]
        return self._weighted_rewards()

    def _dynamic_sampling_batch(self) -> dict:
        """DAPO's refill (module docstring, 7): rounds of generation until the kept groups fill the batch."""
        group_size, target = self.num_generations, self._prompts_per_generation()
        processes, rank = self.accelerator.num_processes, self.accelerator.process_index
        local = self.args.generation_batch_size // processes  # rows per rank per round
        ids = self._row_ids()
        stream = self._stream()
        round_rows: list[list[dict | None]] = []  # per round: this rank's rows as payloads
        round_uniform: list[list[bool]] = []  # per round: is group g uniform
        round_prompts: list[list[int]] = []  # per round: the prompts (dataset rows), one per group
        for _ in range(self.max_generation_batches):
            prompts = stream.take()
            rows = [i for i in prompts for _ in range(group_size)][rank * local : (rank + 1) * local]
            output = self._score_generation([self.train_dataset[i] for i in rows], "train")
            round_uniform.append(uniform_groups(self._dynamic_sampling_values(), group_size).tolist())
            round_prompts.append(prompts)
            round_rows.append(split_rows(split_pixel_values_by_grid(output)))
            plan = fill_plan(round_uniform, target)
            self._free_unplanned_rows(round_rows, plan, local)  # a group out of the plan never comes back in
            if all(t for _, _, t in plan):
                break
        wanted = [(r, g * group_size + m) for r, g, _ in plan for m in range(group_size)]  # global rows, in order
        batch = merge_rows(self._rows_for_this_rank(round_rows, wanted, local), self._tokenizer.pad_token_id)
        batch = unsplit_pixel_values_by_grid(batch)
        trained = torch.tensor(
            [t for _, _, t in plan for _ in range(group_size)][rank * local : (rank + 1) * local],
            device=batch["completion_mask"].device,
        )  # [B_local]
        batch["completion_mask"] = batch["completion_mask"] * trained[:, None].to(batch["completion_mask"].dtype)
        batch["num_items_in_batch"] = self.accelerator.gather(self._loss_mask(batch).sum()).sum()

        kept = sum(t for _, _, t in plan)
        entry = {
            "step": self.state.global_step,
            "generation_batches": len(round_uniform),
            "groups_generated": len(round_uniform) * target,
            "groups_kept": kept,
            "filled": kept == target,
            "trained": [ids[round_prompts[r][g]] for r, g, t in plan if t],
            "dropped": [
                ids[round_prompts[r][g]] for r, flags in enumerate(round_uniform) for g, u in enumerate(flags) if u
            ],
        }
        self.dynamic_sampling_log.append(entry)
        metrics = self._metrics["train"]
        metrics["dynamic_sampling/groups_kept"].append(float(kept))
        metrics["dynamic_sampling/groups_generated"].append(float(entry["groups_generated"]))
        metrics["dynamic_sampling/groups_dropped"].append(float(len(entry["dropped"])))
        metrics["dynamic_sampling/generation_batches"].append(float(entry["generation_batches"]))
        metrics["dynamic_sampling/filled"].append(float(entry["filled"]))
        if not entry["filled"]:
            logger.warning(
                "step %d: dynamic sampling kept %d of %d groups after max_generation_batches = %d rounds; "
                "training on those (the other %d slots are masked out of the loss)",
                self.state.global_step + 1,
                kept,
                target,
                len(round_uniform),
                target - kept,
            )
        if self.record_dir is not None and self.accelerator.is_main_process:
            self.record_dir.mkdir(parents=True, exist_ok=True)
            with open(self.record_dir / "dynamic_sampling.jsonl", "a") as fh:
                fh.write(json.dumps(entry) + "\n")
        self._record_consumed(
            [{"id": ids[round_prompts[r][i // group_size]]} for r, i in wanted[rank * local : (rank + 1) * local]]
        )
        self._log_curriculum(*stream.position())
        return batch

    def _free_unplanned_rows(
        self, round_rows: list[list[dict | None]], plan: list[tuple[int, int, bool]], local: int
    ) -> None:
        """Drop this rank's rows of every group outside ``plan``: later rounds only replace planned padding
        by kept groups, so such a group is never needed again, and its tensors (pixel values, log-probs)
        need not wait in memory for the remaining rounds."""
        planned = {(r, g) for r, g, _ in plan}
        offset = self.accelerator.process_index * local
        for r, rows in enumerate(round_rows):
            for k in range(len(rows)):
                if rows[k] is not None and (r, (offset + k) // self.num_generations) not in planned:
                    rows[k] = None

    def _rows_for_this_rank(
        self, round_rows: list[list[dict | None]], wanted: list[tuple[int, int]], local: int
    ) -> list[dict]:
        """The payloads of this rank's slice of ``wanted`` (``(round, global row)``), fetched from the
        ranks that generated them: each rank sends (on CPU) what another rank trains, everyone keeps its own."""
        rank, processes = self.accelerator.process_index, self.accelerator.num_processes
        mine = wanted[rank * local : (rank + 1) * local]
        if processes == 1:
            return [round_rows[r][i] for r, i in mine]
        outgoing = {
            (r, i): _moved(round_rows[r][i % local], "cpu")
            for q in range(processes)
            if q != rank
            for r, i in wanted[q * local : (q + 1) * local]
            if i // local == rank
        }
        received: dict = {}
        for part in gather_object([outgoing]):
            received.update(part)
        device = self.accelerator.device
        return [round_rows[r][i % local] if i // local == rank else _moved(received[(r, i)], device) for r, i in mine]

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


def _moved(payload, device):
    """A row payload (tensors, tuples of tensors, list entries) with every tensor on ``device``."""
    if isinstance(payload, torch.Tensor):
        return payload.to(device)
    if isinstance(payload, dict):
        return {k: _moved(v, device) for k, v in payload.items()}
    if isinstance(payload, tuple):
        return tuple(_moved(v, device) for v in payload)
    if isinstance(payload, ListEntry):
        return ListEntry(_moved(payload.value, device))
    return payload
