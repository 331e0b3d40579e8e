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


def test_margin_reaches_the_loss(lab, lab_pairs, vl_backbone):
    _, processor = RewardModel.from_backbone(vl_backbone, HeadConfig("linear"), device="cpu")
    examples = [RewardExample(p, lab) for p in lab_pairs[:3]]
    assert "margin" not in RewardCollator(processor, reads_images=True)(examples)
    batch = RewardCollator(processor, reads_images=True, default_margin=0.5)(examples)
    assert batch["margin"].tolist() == [0.5, 0.5, 0.5]


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
