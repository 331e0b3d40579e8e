"""Stage-1 SFT: the fidelity filter, and a real (tiny) training run that learns."""

from __future__ import annotations

import pytest
import torch

from egt.data.presentation import seeded_coin
from egt.errors import EgtError
from egt.records import PreferencePair
from egt.train.sft import select_traces


def _pair(i, preferred, traces):
    return PreferencePair(id=str(i), question="q", responses=("a", "b"), preferred=preferred, meta={"traces": traces})


T1 = "<think>r</think><answer>1</answer>"
T2 = "<think>r</think><answer>2</answer>"


def test_fidelity_filter_drops_traces_that_disagree_with_the_label():
    pairs = [
        _pair(0, 0, [T1, T2]),  # consistent: stored says 1 (=0), swapped says 2 (=0)
        _pair(1, 1, [T1, T2]),  # traces pick response 0, label says 1 → dropped in both orders
        _pair(2, 0, ["garbage", T2]),
    ]
    kept, stats = select_traces(pairs, "both", seed=0, fidelity_filter=True)
    assert [(p.id, s) for p, s, _ in kept] == [("0", False), ("0", True), ("2", True)]
    assert stats.dropped_fidelity == 2 and stats.dropped_unparsable == 1
    kept_all, stats_off = select_traces(pairs, "both", seed=0, fidelity_filter=False)
    assert len(kept_all) == 5 and stats_off.dropped_fidelity == 0


def test_random_trace_order_is_seeded():
    pairs = [_pair(i, 0, [T1, T2]) for i in range(50)]
    a, _ = select_traces(pairs, "random", seed=1, fidelity_filter=True)
    b, _ = select_traces(pairs, "random", seed=1, fidelity_filter=True)
    assert [s for _, s, _ in a] == [s for _, s, _ in b] and 10 < sum(s for _, s, _ in a) < 40
    # the project's one presentation coin decides, per pair id: the same draw evaluation and RL use
    assert [s for _, s, _ in a] == [seeded_coin(1, p.id) for p in pairs]
    c, _ = select_traces(pairs, "random", seed=2, fidelity_filter=True)
    assert [s for _, s, _ in c] != [s for _, s, _ in a]


def test_an_unknown_trace_order_is_the_shared_order_error():
    with pytest.raises(EgtError, match=r"--order: unknown presentation order 'sideways' \(one of stored \| random"):
        select_traces([_pair(0, 0, [T1, T2])], "sideways", seed=0, fidelity_filter=True)


@pytest.mark.slow
def test_sft_smoke_parameters_change_and_loss_falls(small_lab, tmp_path):
    from trl import SFTConfig

    from egt.models.load import load_model
    from egt.models.tiny import build_model
    from egt.models.training import cpu_sft_defaults
    from egt.train.sft import JudgeSFTArgs, train_judge_sft

    cfg = SFTConfig(
        **{
            **cpu_sft_defaults(),
            "output_dir": str(tmp_path / "judge"),
            "max_steps": 12,
            "per_device_train_batch_size": 16,
            "logging_steps": 1,
            "disable_tqdm": True,
            "warmup_steps": 0,
        }
    )
    summary = train_judge_sft(JudgeSFTArgs(data=str(small_lab / "sft.jsonl")), cfg)
    assert summary["steps"] == 12 and summary["last_loss"] < 0.7 * summary["first_loss"]
    trained = load_model(str(tmp_path / "judge"), device="cpu")
    fresh = build_model(trained.tokenizer, _tiny_cfg(), seed=0)
    changed = [n for n, p in trained.model.named_parameters() if not torch.equal(p, dict(fresh.named_parameters())[n])]
    assert len(changed) > 0.9 * len(list(fresh.parameters()))
    assert (tmp_path / "judge" / "egt_judge.json").is_file()
    assert not (tmp_path / "judge.checkpoints").exists()


def _tiny_cfg():
    from egt.models.tiny import TinyVLConfig

    return TinyVLConfig()


# --- Pre-tokenised data, the padding collator and the completion-only LM head -------------------


def test_padding_collator_pads_right_and_labels_only_the_completion():
    from egt.train.collate import PaddingCollator

    feats = [
        {"pixel_values": torch.ones(2, 3), "image_grid_thw": torch.tensor([[1, 1, 2]])},
        {"pixel_values": torch.zeros(4, 3), "image_grid_thw": torch.tensor([[1, 2, 2]])},
    ]
    examples = [
        {"row": 1, "input_ids": [5, 6, 7, 8], "completion_mask": [0, 0, 1, 1], "mm_token_type_ids": [1, 1, 0, 0]},
        {"row": 0, "input_ids": [5, 9], "completion_mask": [0, 1], "mm_token_type_ids": [1, 0]},
    ]
    batch = PaddingCollator(pad_token_id=0, features=feats)(examples)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8], [5, 9, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 7, 8], [-100, 9, -100, -100]]
    assert batch["mm_token_type_ids"].tolist() == [[1, 1, 0, 0], [1, 0, 0, 0]]
    assert batch["pixel_values"].tolist() == [[0.0] * 3] * 4 + [[1.0] * 3] * 2  # row 1's, then row 0's
    assert batch["image_grid_thw"].tolist() == [[1, 2, 2], [1, 1, 2]]
    full = PaddingCollator(pad_token_id=0, features=feats, completion_only_loss=False)(examples)
    assert full["labels"].tolist() == [[5, 6, 7, 8], [5, 9, -100, -100]]


def _lab_setup(small_lab, n=12):
    from trl import SFTConfig

    from egt.models.training import cpu_sft_defaults
    from egt.records import read_pairs
    from egt.train.sft import JudgeSFTArgs, load_sft_model, select_traces

    pairs = read_pairs(small_lab / "sft.jsonl")
    examples, _ = select_traces(pairs, "both", seed=0, fidelity_filter=False)
    config = SFTConfig(**{**cpu_sft_defaults(), "output_dir": "unused", "disable_tqdm": True})
    args = JudgeSFTArgs(data=str(small_lab / "sft.jsonl"))
    model, processor, is_vision = load_sft_model(args, pairs, config)
    return examples[:n], model, processor, config, args


def _trl_batch(examples, small_lab, processor, config):
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from egt.train.sft import build_sft_dataset

    dataset = build_sft_dataset(examples, small_lab, "compact", is_vision=True)
    collator = DataCollatorForVisionLanguageModeling(processor, max_length=config.max_length, completion_only_loss=True)
    return collator([dataset[i] for i in range(len(dataset))])


def test_pretokenised_batch_is_trls_batch(small_lab):
    from egt.train.collate import pretokenize_sft_examples
    from egt.train.sft import prepare_sft_data, sft_rows

    examples, _, processor, config, _ = _lab_setup(small_lab)
    old = _trl_batch(examples, small_lab, processor, config)
    dataset, collator, _ = prepare_sft_data(examples, small_lab, "compact", processor, True, config)
    new = collator([dataset[i] for i in range(len(dataset))])
    assert sorted(old) == sorted(new)
    for key in old:
        assert torch.equal(old[key], new[key]), key
    # the loss tokens are exactly each completion: the trace and the end of the assistant turn
    tokenizer = processor.tokenizer
    for i, (_, _, trace) in enumerate(examples):
        labelled = new["labels"][i][new["labels"][i] != -100]
        assert tokenizer.decode(labelled) == trace + "<|im_end|>\n"
        first = int((new["labels"][i] != -100).nonzero()[0])
        assert tokenizer.decode(new["input_ids"][i, :first]).endswith("<|im_start|>assistant\n")
    # one example at a time, or the pixels processed per batch instead of cached: the same batch
    rows = sft_rows(examples, small_lab, "compact", is_vision=True)
    single = pretokenize_sft_examples(rows, processor, max_length=config.max_length, chunk_size=1)
    assert single.dataset.to_dict() == dataset.to_dict()
    uncached, lazy, _ = prepare_sft_data(examples, small_lab, "compact", processor, True, config, pixel_cache_mb=0)
    assert "images" in lazy.features[0]
    lazy_batch = lazy([uncached[i] for i in range(len(uncached))])
    for key in old:
        assert torch.equal(old[key], lazy_batch[key]), key


def test_completion_head_loss_equals_trls_fused_loss(small_lab, tmp_path, monkeypatch):
    from trl import SFTTrainer

    import egt.train.sft_trainer
    from egt.train.collate import PaddingCollator
    from egt.train.sft import make_sft_trainer

    examples, model, processor, config, args = _lab_setup(small_lab, n=8)
    config.output_dir = str(tmp_path)
    batch = _trl_batch(examples, small_lab, processor, config)
    fast = make_sft_trainer(model, processor, True, examples, small_lab, args, config)
    assert fast.completion_head and isinstance(fast.data_collator, PaddingCollator)
    assert config.remove_unused_columns and not fast.args.remove_unused_columns  # the caller's config is left alone
    new_batch = fast.data_collator([fast.train_dataset[i] for i in range(len(fast.train_dataset))])
    old_trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=fast.train_dataset,
        processing_class=processor,
        data_collator=lambda x: x,
    )
    n_items = (batch["labels"][:, 1:] != -100).sum()
    losses, grads = [], []
    for trainer, inputs in ((old_trainer, batch), (fast, new_batch)):
        model.zero_grad()
        loss = trainer.compute_loss(model, dict(inputs), num_items_in_batch=n_items)
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert abs(losses[0] - losses[1]) < 1e-5
    assert torch.allclose(grads[0], grads[1], atol=1e-5, rtol=1e-4)
    # without num_items_in_batch, both average over the completion tokens of the batch
    with torch.no_grad():
        a = old_trainer.compute_loss(model, dict(batch)).item()
        b = fast.compute_loss(model, dict(new_batch)).item()
    assert abs(a - b) < 1e-5
    assert fast._metrics["train"]["mean_token_accuracy"] and fast._metrics["train"]["entropy"]
    # too many loss tokens for one logits tensor: TRL's chunked head, same loss
    monkeypatch.setattr(egt.train.sft_trainer, "MAX_LOGITS", 0)
    with torch.no_grad():
        assert abs(fast.compute_loss(model, dict(new_batch)).item() - b) < 1e-5


def test_text_only_model_trains_through_the_same_trainer(small_lab, tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from trl import SFTTrainer

    from egt.train.sft import build_sft_dataset, make_sft_trainer

    examples, _, processor, config, args = _lab_setup(small_lab, n=8)
    config.output_dir = str(tmp_path)
    tokenizer = processor.tokenizer
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    fast = make_sft_trainer(model, tokenizer, False, examples, small_lab, args, config)
    assert fast.completion_head
    old = SFTTrainer(
        model=model,
        args=config,
        processing_class=tokenizer,
        train_dataset=build_sft_dataset(examples, small_lab, "compact", is_vision=False),
    )
    batch = next(iter(fast.get_train_dataloader()))
    assert ((batch["labels"] != -100).sum(1) > 0).all() and (batch["labels"][:, 0] == -100).all()
    with torch.no_grad():
        a = old.compute_loss(model, dict(batch)).item()
        b = fast.compute_loss(model, dict(batch)).item()
    assert abs(a - b) < 1e-5


@pytest.mark.slow
def test_an_interrupted_sft_run_resumes_and_ends_where_the_uninterrupted_run_ends(small_lab, tmp_path):
    """Killed right after its step-3 checkpoint and rerun with ``--resume_from_checkpoint true`` (a
    string, as the CLI and the experiment runner give it), the run ends with the uninterrupted run's
    weights. Two defects this caught: "true" reached ``Trainer.train`` as the path "True", and
    ``Trainer`` loaded none of the checkpoint's weights (saved under the released key names) — the
    resumed run went on from the initial weights and ended elsewhere."""
    from trl import SFTConfig

    from egt.models.load import load_model
    from egt.models.training import cpu_sft_defaults
    from egt.train.sft import JudgeSFTArgs, train_judge_sft
    from egt.train.sft_trainer import JudgeSFTTrainer
    from resume_helpers import Killed, killed_after_checkpoint, max_weight_difference, one_thread

    def config(out, resume=None):
        return SFTConfig(
            **{
                **cpu_sft_defaults(),
                "output_dir": str(out),
                "max_steps": 6,
                "per_device_train_batch_size": 8,
                "logging_steps": 1,
                "disable_tqdm": True,
                "warmup_steps": 0,
                "save_strategy": "steps",
                "save_steps": 3,
                "resume_from_checkpoint": resume,
            }
        )

    args = JudgeSFTArgs(data=str(small_lab / "sft.jsonl"), keep_checkpoints=True, limit=48)
    with one_thread():  # both runs do the same arithmetic
        whole = train_judge_sft(args, config(tmp_path / "whole"))
        with killed_after_checkpoint(JudgeSFTTrainer, 3), pytest.raises(Killed):
            train_judge_sft(args, config(tmp_path / "cut"))
        assert not (tmp_path / "cut").exists() and (tmp_path / "cut.checkpoints" / "checkpoint-3").is_dir()
        resumed = train_judge_sft(args, config(tmp_path / "cut", resume="true"))
    assert resumed["steps"] == whole["steps"] == 6 and resumed["last_loss"] == whole["last_loss"]
    a = load_model(str(tmp_path / "whole"), device="cpu").model.state_dict()
    b = load_model(str(tmp_path / "cut"), device="cpu").model.state_dict()
    assert max_weight_difference(a, b) <= 1e-6
