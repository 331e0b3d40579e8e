"""Bradley–Terry loss by hand, a fresh model's loss ≈ ln 2, a few steps that learn, LoRA."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import TrainerCallback

from egt.errors import EgtError
from egt.models.training import cpu_defaults_without_accelerator as cpu_defaults
from egt.rm.collate import RewardCollator, RewardExample
from egt.rm.head import HeadConfig, bradley_terry_loss
from egt.rm.model import RewardModel
from egt.rm.trainer import RewardModelConfig, RewardModelTrainer, train_reward_model


def _config(tmp_path, **kw):
    base = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        learning_rate=2e-3,
        max_steps=8,
        save_strategy="no",
        logging_steps=1,
        seed=0,
        disable_tqdm=True,
        lr_scheduler_type="constant",
    )
    return RewardModelConfig(**{**base, **cpu_defaults(), **kw})


def _loss_on(model, collator, examples):
    with torch.no_grad():
        batch = collator(examples)
        chosen, rejected = torch.chunk(model(**batch), 2)
        return bradley_terry_loss(chosen, rejected).item()


@pytest.mark.parametrize("head", ["mlp", "linear"])
def test_fresh_model_starts_near_ln2(lab_examples, vl_backbone, head):
    model, processor = RewardModel.from_backbone(vl_backbone, HeadConfig(head), device="cpu", seed=0)
    collator = RewardCollator(processor, reads_images=True)
    assert _loss_on(model.eval(), collator, lab_examples[:16]) == pytest.approx(math.log(2), abs=0.02)


def test_a_few_steps_change_parameters_and_reduce_loss(tmp_path, lab_examples, vl_backbone):
    model, processor = RewardModel.from_backbone(vl_backbone, HeadConfig("mlp"), device="cpu", seed=0)
    examples = lab_examples[:8]  # one batch, seen every step: the loss on it must fall
    collator = RewardCollator(processor, reads_images=True)
    before_loss = _loss_on(model.eval(), collator, examples)
    before = {k: v.clone() for k, v in model.named_parameters()}
    trainer = train_reward_model(model.train(), processor, examples, _config(tmp_path, max_steps=10))
    after_loss = _loss_on(model.eval(), collator, examples)
    assert after_loss < before_loss - 0.05
    changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[k])]
    assert any(k.startswith("head.") for k in changed)
    assert any(k.startswith("backbone.") and "visual" not in k for k in changed)
    assert any("visual" in k for k in changed)  # the image path is trained too
    logged = [row for row in trainer.state.log_history if "accuracy" in row and "loss" in row]
    assert logged and {"accuracy", "margin", "loss"} <= set(logged[0])
    assert (tmp_path / "out" / "egt_reward.json").is_file()
    reloaded, _ = RewardModel.from_pretrained(tmp_path / "out", device="cpu")
    assert _loss_on(reloaded, collator, examples) == pytest.approx(after_loss, abs=1e-5)


def test_lora_trains_and_saves_a_merged_model(tmp_path, lab_examples, vl_backbone):
    model, processor = RewardModel.from_backbone(vl_backbone, HeadConfig("linear"), device="cpu", seed=0)
    base_weights = {k: v.clone() for k, v in model.backbone.named_parameters()}
    args = _config(tmp_path, max_steps=3, use_lora=True, lora_r=4, lora_target_modules="q_proj,v_proj")
    train_reward_model(model, processor, lab_examples[:8], args)
    assert not (tmp_path / "out" / "adapter_config.json").exists()  # merged: loads on its own
    reloaded, _ = RewardModel.from_pretrained(tmp_path / "out", device="cpu")
    q = "model.language_model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(dict(reloaded.backbone.named_parameters())[q], base_weights[q])
    k = "model.language_model.layers.0.self_attn.k_proj.weight"  # not a LoRA target: unchanged
    assert torch.equal(dict(reloaded.backbone.named_parameters())[k], base_weights[k])


def test_text_backbone_refuses_image_pairs(tmp_path, lab_examples, text_backbone):
    model, processor = RewardModel.from_backbone(text_backbone, HeadConfig("linear"), device="cpu")
    with pytest.raises(EgtError, match="cannot read images"):
        train_reward_model(model, processor, lab_examples[:4], _config(tmp_path, max_steps=1))


def test_margin_reaches_the_loss(tmp_path, lab, lab_pairs, vl_backbone):
    """A pair's margin m (the config's default, or its own meta['margin']) enters the trainer's loss as
    mean(−log σ(r_chosen − r_rejected − m)); without one the loss is plain Bradley–Terry."""
    import dataclasses

    import torch.nn.functional as F

    trainer, model, plain = _trainer(tmp_path, vl_backbone)
    model.eval()
    examples = [RewardExample(p, lab) for p in lab_pairs[:3]]
    own = [RewardExample(dataclasses.replace(p, meta={**p.meta, "margin": 2.0}), lab) for p in lab_pairs[2:3]]
    chosen, rejected = _rewards(model, plain, examples)
    with_margin = RewardCollator(plain.processor, reads_images=True, default_margin=0.5)
    margins = torch.tensor([0.5, 0.5, 2.0])
    with torch.no_grad():
        got = trainer.compute_loss(model, with_margin(examples[:2] + own)).item()
        none = trainer.compute_loss(model, plain(examples)).item()
    assert got == pytest.approx(-F.logsigmoid(chosen - rejected - margins).mean().item(), abs=1e-6)
    assert none == pytest.approx(-F.logsigmoid(chosen - rejected).mean().item(), abs=1e-6)
    assert got > none + 0.1


class _GradCapture(TrainerCallback):
    """Copies every parameter's gradient just before the optimizer step (after accumulation)."""

    def __init__(self, model):
        self.model, self.grads = model, {}

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.grads = {k: p.grad.detach().clone() for k, p in self.model.named_parameters() if p.grad is not None}


def _accumulated_grads(tmp_path, vl_backbone, examples, batch_size, accumulation):
    """Gradients of one optimizer step of the real training loop (lr 0, no clipping)."""
    model, processor = RewardModel.from_backbone(vl_backbone, HeadConfig("mlp"), device="cpu", seed=0)
    capture = _GradCapture(model)
    args = _config(
        tmp_path / f"b{batch_size}x{accumulation}",
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        learning_rate=0.0,
        max_grad_norm=0.0,
    )
    trainer = RewardModelTrainer(
        model=model,
        args=args,
        train_dataset=examples,
        callbacks=[capture],
        data_collator=RewardCollator(processor, reads_images=True),
        processing_class=processor,
    )
    trainer.train()
    return trainer, capture.grads


def _max_difference(a, b):
    assert a.keys() == b.keys() and a
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_gradient_accumulation_matches_one_large_batch(tmp_path, lab_examples, vl_backbone):
    """The Bradley–Terry loss is a mean over pairs: 2 accumulated micro-batches of 4 pairs must give
    the gradient of one batch of the same 8 pairs. The trainer states how it scales the loss
    instead of inferring it from ``RewardModel.forward``'s ``**inputs``."""
    examples = lab_examples[:8]
    trainer, accumulated = _accumulated_grads(tmp_path, vl_backbone, examples, 4, 2)
    _, whole = _accumulated_grads(tmp_path, vl_backbone, examples, 8, 1)
    assert _max_difference(accumulated, whole) < 1e-6
    assert any(k.startswith("head.") for k in whole) and max(g.abs().max().item() for g in whole.values()) > 1e-3
    assert trainer.model_accepts_loss_kwargs is False and trainer.loss_is_scaled_for_ga is False
    assert RewardModel.accepts_loss_kwargs is False


def test_loss_scaling_does_not_depend_on_num_items_in_batch(lab_examples, vl_backbone, tmp_path):
    """The Trainer passes ``num_items_in_batch`` whenever it can count items; a loss that never uses
    it must still be divided by the accumulation steps (a model taken to accept loss kwargs would
    not be, and its accumulated gradients would come out 2× too large)."""
    model, processor = RewardModel.from_backbone(vl_backbone, HeadConfig("linear"), device="cpu", seed=0)
    collator = RewardCollator(processor, reads_images=True)
    trainer = RewardModelTrainer(
        model=model,
        args=_config(tmp_path, gradient_accumulation_steps=2),
        data_collator=collator,
        processing_class=processor,
    )
    examples = lab_examples[:8]

    def grads(batches):
        model.zero_grad()
        trainer.current_gradient_accumulation_steps = len(batches)
        for batch in batches:
            trainer.training_step(model, collator(batch), num_items_in_batch=torch.tensor(len(examples)))
        return {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}

    assert _max_difference(grads([examples[:4], examples[4:]]), grads([examples])) < 1e-6


# --- Checkpoints: save every N steps, resume, strict loading --------------------------------------


class _StopAt(TrainerCallback):
    """Stops training right after step ``step`` (its checkpoint written): an interrupted run."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def _checkpointed_run(out, vl_backbone, examples, stop=None, resume=None):
    """4 steps of 4 pairs over 8 pairs (2 epochs), a checkpoint every 2 steps; ``(model, trainer)``."""
    model, processor = RewardModel.from_backbone(vl_backbone, HeadConfig("mlp"), device="cpu", seed=0)
    args = _config(
        out,
        per_device_train_batch_size=4,
        max_steps=4,
        save_strategy="steps",
        save_steps=2,
        lr_scheduler_type="linear",
        resume_from_checkpoint=resume,
    )
    trainer = RewardModelTrainer(
        model=model,
        args=args,
        train_dataset=examples,
        data_collator=RewardCollator(processor, reads_images=True),
        processing_class=processor,
        callbacks=[_StopAt(stop)] if stop else None,
    )
    trainer.train(resume_from_checkpoint=resume)
    return model, trainer


def _losses(trainer):
    return {row["step"]: row["loss"] for row in trainer.state.log_history if "loss" in row}


@pytest.mark.slow
def test_an_interrupted_run_resumed_from_its_checkpoint_continues_as_the_uninterrupted_one(
    tmp_path, lab_examples, vl_backbone
):
    """The GPU recipe saves every 500 steps; a run stopped after its step-2 checkpoint and resumed from
    it ends with the uninterrupted run's weights (backbone and head) and logs its losses for steps 3-4:
    weights, optimiser, schedule and data order all come back."""
    examples = lab_examples[:8]
    full, full_trainer = _checkpointed_run(tmp_path / "full", vl_backbone, examples)
    _, cut = _checkpointed_run(tmp_path / "cut", vl_backbone, examples, stop=2)
    checkpoint = tmp_path / "cut" / "out" / "checkpoint-2"
    assert cut.state.global_step == 2 and (checkpoint / "egt_reward.json").is_file()
    resumed, resumed_trainer = _checkpointed_run(tmp_path / "resumed", vl_backbone, examples, resume=str(checkpoint))
    assert resumed_trainer.state.global_step == 4
    full_losses, resumed_losses = _losses(full_trainer), _losses(resumed_trainer)
    assert sorted(resumed_losses) == [1, 2, 3, 4]  # steps 1-2 from the checkpoint's state, 3-4 run again
    assert resumed_losses == pytest.approx(full_losses, abs=1e-6)
    assert full_losses[4] != pytest.approx(full_losses[3], abs=1e-6)  # the steps differ: the comparison can fail
    want = dict(full.named_parameters())
    assert max((p - want[k]).abs().max().item() for k, p in resumed.named_parameters()) < 1e-6


@pytest.mark.slow
def test_resuming_from_a_checkpoint_that_lacks_a_weight_is_an_error_naming_it(tmp_path, lab_examples, vl_backbone):
    """A checkpoint missing a backbone tensor would otherwise resume with it initialised at random."""
    from safetensors.torch import load_file, save_file

    _, cut = _checkpointed_run(tmp_path / "cut", vl_backbone, lab_examples[:8], stop=2)
    checkpoint = tmp_path / "cut" / "out" / "checkpoint-2"
    weights = load_file(str(checkpoint / "model.safetensors"))
    dropped = sorted(k for k in weights if "layers.1.mlp.up_proj" in k)
    assert dropped
    save_file({k: v for k, v in weights.items() if k not in dropped}, str(checkpoint / "model.safetensors"))
    with pytest.raises(EgtError, match=r"checkpoint-2: .*missing .*layers\.1\.mlp\.up_proj\.weight"):
        _checkpointed_run(tmp_path / "resumed", vl_backbone, lab_examples[:8], resume=str(checkpoint))


def _trainer(tmp_path, vl_backbone, head="linear", **kw):
    model, processor = RewardModel.from_backbone(vl_backbone, HeadConfig(head), device="cpu", seed=0)
    collator = RewardCollator(processor, reads_images=True)
    args = _config(tmp_path, **kw)
    trainer = RewardModelTrainer(model=model, args=args, data_collator=collator, processing_class=processor)
    return trainer, model, collator


def _rewards(model, collator, examples):
    with torch.no_grad():
        return torch.chunk(model(**collator(examples)), 2)  # chosen [B], rejected [B]


def test_center_rewards_coefficient_adds_its_penalty_to_the_loss(tmp_path, lab_examples, vl_backbone):
    """loss = Bradley–Terry + c · mean((r_chosen + r_rejected)²); without c, Bradley–Terry alone."""
    examples = lab_examples[:6]
    plain, model, collator = _trainer(tmp_path / "a", vl_backbone)
    centred, _, _ = _trainer(tmp_path / "b", vl_backbone, center_rewards_coefficient=0.25)
    model.eval()
    chosen, rejected = _rewards(model, collator, examples)
    with torch.no_grad():
        base = plain.compute_loss(model, collator(examples)).item()
        with_penalty = centred.compute_loss(model, collator(examples)).item()
    assert base == pytest.approx(bradley_terry_loss(chosen, rejected).item(), abs=1e-6)
    penalty = torch.mean((chosen + rejected) ** 2).item()
    assert penalty > 1e-3  # the penalty is visible on these rewards
    assert with_penalty == pytest.approx(base + 0.25 * penalty, abs=1e-6)


def test_evaluation_reports_the_loss_and_accuracy_of_the_eval_pairs(tmp_path, lab_examples, vl_backbone):
    """``evaluate`` runs ``prediction_step`` over the eval pairs: eval_loss is their Bradley–Terry loss
    and eval_accuracy the share with r_chosen > r_rejected, as computed here from the model's rewards."""
    examples = lab_examples[8:16]
    trainer, model, collator = _trainer(tmp_path, vl_backbone, per_device_eval_batch_size=8)
    metrics = trainer.evaluate(eval_dataset=examples)
    chosen, rejected = _rewards(model.eval(), collator, examples)
    assert metrics["eval_loss"] == pytest.approx(bradley_terry_loss(chosen, rejected).item(), abs=1e-5)
    assert metrics["eval_accuracy"] == pytest.approx((chosen > rejected).float().mean().item())
    assert 0 < metrics["eval_accuracy"] < 1  # a fresh model's accuracy: a wrong count would show
    loss, logits, labels = trainer.prediction_step(model, collator(examples), prediction_loss_only=False)
    assert loss.item() == pytest.approx(metrics["eval_loss"], abs=1e-5) and logits is None and labels is None
