"""Stage 1 of EGT: SFT of the judge on teacher reasoning traces, through TRL's ``SFTTrainer``.

Each pair carries teacher traces in ``meta["traces"]`` (one per presentation order: stored,
swapped; ``null`` for an order without one, as ``egt traces --order stored|random`` writes) or
``meta["trace"]`` (stored order only). EGT's *fidelity filter* drops a trace whose
verdict, mapped back to the stored responses, disagrees with the item's label (which may itself
be noisy); the count is reported. The loss is on the assistant turn only (TRL's
prompt-completion format). Where we depart from the paper: the lab's teacher is a scripted
annotator with a known error rate, not a stronger model.

Throughput (``bench/sft_step.py``): a vision dataset is tokenised once (:mod:`egt.train.collate`;
TRL's vision collator renders, tokenises and processes the images of every batch of every epoch),
:class:`~egt.train.sft_trainer.JudgeSFTTrainer` projects only the completion tokens through the
LM head (TRL's fused head scores every position on CPU), and :func:`egt.models.training.cpu_sft_defaults` turns off
gradient checkpointing (``SFTConfig``'s default). A batch and its loss are the ones TRL computes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from egt.data.presentation import check_order, seeded_coin
from egt.errors import EgtError
from egt.judge.base import original_choice
from egt.judge.parse import parse_verdict
from egt.judge.prompt import judge_prompt, judge_user_text
from egt.models.args import ImageSizeArgs
from egt.models.training import checkpoint_dir, resume_value
from egt.records import PreferencePair, open_images


@dataclass
class JudgeSFTArgs(ImageSizeArgs):
    """EGT stage-1 settings; TRL's ``SFTConfig`` fields are accepted beside these."""

    data: str = field(
        default="runs/lab/sft.jsonl",
        metadata={"help": "Pairs with teacher traces in meta.traces (egt traces writes them)."},
    )
    images_dir: str = field(default="", metadata={"help": "Images root; default: the dataset's folder."})
    model: str = field(
        default="tiny",
        metadata={"help": "'tiny' builds a fresh tiny Qwen2.5-VL from the data; else a checkpoint or hub id."},
    )
    order: Literal["stored", "random", "both"] = field(
        default="random",
        metadata={"help": "Presentation order of each trace: stored | random (seeded coin) | both (each pair twice)."},
    )
    prompt_style: str = field(
        default="compact",
        metadata={"help": "r1_reward (EGT/R1-Reward's prompt) | compact (short, for the tiny model)."},
    )
    fidelity_filter: bool = field(
        default=True, metadata={"help": "EGT: drop traces whose verdict disagrees with the label."}
    )
    limit: int = field(default=0, metadata={"help": "Use only the first N pairs (0 = all)."})
    max_new_tokens: int = field(default=64, metadata={"help": "Generation budget saved with the judge for evaluation."})
    tiny_hidden_size: int = field(default=128, metadata={"help": "Tiny model: hidden size."})
    tiny_layers: int = field(default=2, metadata={"help": "Tiny model: decoder layers."})
    keep_checkpoints: bool = field(default=False, metadata={"help": "Keep trainer checkpoints after a successful run."})
    pretokenize: bool = field(
        default=True, metadata={"help": "Tokenise a VLM's examples once (off: TRL's collator, per batch)."}
    )
    pixel_cache_mb: float = field(
        default=2048,
        metadata={"help": "Pre-process the images once if their pixel values fit in this many MB, else per batch."},
    )
    completion_head: bool = field(
        default=True,
        metadata={"help": "LM head on the completion tokens only (off: TRL's fused head on every position)."},
    )


@dataclass
class SFTStats:
    n_pairs: int = 0
    n_examples: int = 0
    dropped_fidelity: int = 0
    dropped_unparsable: int = 0
    missing_trace: int = 0


def pair_traces(pair: PreferencePair) -> list[tuple[bool, str]]:
    """``(swapped, trace)`` for each presentation order the pair has a trace for (``--order random``
    picks one of them by the pair's coin, or the only one)."""
    traces = pair.meta.get("traces")
    if traces is not None:
        if not (
            isinstance(traces, list)
            and len(traces) == 2
            and all(t is None or isinstance(t, str) for t in traces)
            and any(isinstance(t, str) for t in traces)
        ):
            raise EgtError(
                f"id={pair.id!r}: field 'meta.traces': expected [stored-order trace, swapped-order trace] "
                "(null for an order without one)"
            )
        return [(swapped, t) for swapped, t in ((False, traces[0]), (True, traces[1])) if t is not None]
    if isinstance(pair.meta.get("trace"), str):
        return [(False, pair.meta["trace"])]
    return []


def select_traces(
    pairs: Sequence[PreferencePair], order: str, seed: int, fidelity_filter: bool
) -> tuple[list[tuple[PreferencePair, bool, str]], SFTStats]:
    """Pick the trace(s) of each pair and apply the fidelity filter."""
    check_order(order)
    stats = SFTStats(n_pairs=len(pairs))
    chosen = []
    for pair in pairs:
        options = pair_traces(pair)
        if not options:
            stats.missing_trace += 1
            continue
        if order == "stored":
            options = options[:1]
        elif order == "random":  # the one seeded coin of egt.data.presentation, per pair
            options = [options[int(seeded_coin(seed, pair.id)) % len(options)]]
        for swapped, trace in options:
            verdict = parse_verdict(trace)
            if verdict is None:
                stats.dropped_unparsable += 1
                continue
            if fidelity_filter and original_choice(verdict.choice, swapped) != pair.preferred:
                stats.dropped_fidelity += 1
                continue
            chosen.append((pair, swapped, trace))
    stats.n_examples = len(chosen)
    if not chosen:
        raise EgtError("no training examples left: every pair lacks a trace or was filtered out")
    return chosen, stats


def sft_rows(
    examples: Sequence[tuple[PreferencePair, bool, str]], images_root, style: str, is_vision: bool
) -> list[dict]:
    """Prompt-completion rows (conversational, images first), as ``SFTTrainer`` takes them."""
    rows = []
    for pair, swapped, trace in examples:
        images = open_images(pair, images_root) if is_vision else None
        n_images = None if images is None else len(images)
        row = {
            "prompt": judge_prompt(pair.question, pair.responses, swapped, style, n_images),
            "completion": [{"role": "assistant", "content": trace}],
        }
        if is_vision:
            row["images"] = images
        rows.append(row)
    return rows


def build_sft_dataset(examples: Sequence[tuple[PreferencePair, bool, str]], images_root, style: str, is_vision: bool):
    """The rows of :func:`sft_rows` as a ``datasets.Dataset`` (TRL tokenises it: per batch for a VLM)."""
    import datasets

    return datasets.Dataset.from_list(sft_rows(examples, images_root, style, is_vision))


def prepare_sft_data(
    examples: Sequence[tuple[PreferencePair, bool, str]],
    images_root,
    style: str,
    processor,
    is_vision: bool,
    config,
    pixel_cache_mb: float = 2048,
):
    """``(train_dataset, data_collator, too_long)``, tokenised once; ``too_long`` holds the indices of
    ``examples`` skipped for exceeding ``config.max_length`` (never truncated: :mod:`egt.train.collate`).

    A VLM's examples are tokenised here (prompt with images, completion) and padded per batch by
    :class:`~egt.train.collate.PaddingCollator`; the caller must pass
    ``dataset_kwargs={"skip_prepare_dataset": True}`` and ``remove_unused_columns=False`` (as
    :func:`make_sft_trainer` does). A text-only model gets the raw rows and ``None``: TRL tokenises a text
    dataset once itself and its collator only pads.
    """
    from egt.train.collate import PaddingCollator, pretokenize_sft_examples

    if not is_vision:
        return build_sft_dataset(examples, images_root, style, is_vision=False), None, []
    pre = pretokenize_sft_examples(
        sft_rows(examples, images_root, style, is_vision=True),
        processor,
        max_length=config.max_length,
        pixel_cache_mb=pixel_cache_mb,
    )
    tokenizer = getattr(processor, "tokenizer", processor)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collator = PaddingCollator(
        pad_token_id=pad,
        features=pre.features,
        image_processor=getattr(processor, "image_processor", None),
        completion_only_loss=config.completion_only_loss is not False,
    )
    if len(pre.too_long) == len(examples):
        raise EgtError(
            f"every one of the {len(examples)} examples is longer than max_length {config.max_length} tokens "
            "(prompt with image tokens + completion); raise --max_length or lower --max_pixels"
        )
    return pre.dataset, collator, pre.too_long


def lab_corpus(pairs: Sequence[PreferencePair], style: str) -> list[str]:
    """Texts the tiny tokenizer is trained on: prompts, responses and traces of the data."""
    from egt.judge.prompt import INSTRUCTIONS

    texts = list(INSTRUCTIONS.values())
    for p in pairs:
        texts.append(judge_user_text(p.question, *p.responses, style=style))
        texts.extend(t for _, t in pair_traces(p))
    return texts


def load_sft_model(args: JudgeSFTArgs, pairs: Sequence[PreferencePair], config):
    """``(model, processor, is_vision)``: a fresh tiny judge fitted to ``pairs``, or a checkpoint."""
    from egt.models.load import load_model
    from egt.models.tiny import TinyVLConfig, build_model, build_processor, train_tokenizer

    if args.model == "tiny":
        tokenizer = train_tokenizer(lab_corpus(pairs, args.prompt_style))
        processor = build_processor(tokenizer)
        heads = max(2, args.tiny_hidden_size // 32)
        cfg = TinyVLConfig(
            hidden_size=args.tiny_hidden_size,
            num_hidden_layers=args.tiny_layers,
            num_attention_heads=heads,
            num_key_value_heads=max(1, heads // 2),
            intermediate_size=3 * args.tiny_hidden_size,
        )
        return build_model(tokenizer, cfg, seed=config.seed), processor, True
    loaded = load_model(
        args.model,
        for_training=True,
        device="cpu" if config.use_cpu else "auto",
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
    )
    return loaded.model, loaded.processor, loaded.is_vision


def train_judge_sft(args: JudgeSFTArgs, config) -> dict:
    """Run stage-1 SFT; the final judge lands atomically in ``config.output_dir``.

    ``config`` is a TRL ``SFTConfig``; its ``output_dir`` is the judge folder and checkpoints go
    to ``<output_dir>.checkpoints`` (resume with ``--resume_from_checkpoint true``).
    """
    import json
    import shutil

    from egt.data.atomic import atomic_path, atomic_write_json
    from egt.judge.generative import JUDGE_META_FILE
    from egt.records import default_images_root, read_pairs

    pairs = read_pairs(args.data)
    if args.limit:
        pairs = pairs[: args.limit]
    images_root = args.images_dir or default_images_root(args.data)
    examples, stats = select_traces(pairs, args.order, config.seed, args.fidelity_filter)

    model, processor, is_vision = load_sft_model(args, pairs, config)
    trainer = make_sft_trainer(
        model,
        processor,
        is_vision,
        examples,
        images_root,
        args,
        config,
        output_dir=str(checkpoint_dir(config.output_dir)),
    )
    result = trainer.train(resume_from_checkpoint=resume_value(config.resume_from_checkpoint))
    final_dir = Path(config.output_dir)

    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {
        "n_pairs": stats.n_pairs,
        "n_examples": stats.n_examples,
        "dropped_fidelity": stats.dropped_fidelity,
        "dropped_unparsable": stats.dropped_unparsable,
        "missing_trace": stats.missing_trace,
        "skipped_too_long": len(trainer.egt_too_long),
        "skipped_too_long_ids": [f"{p.id}{'/swapped' if swapped else ''}" for p, swapped, _ in trainer.egt_too_long],
        "train_loss": round(result.training_loss, 4),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "steps": trainer.state.global_step,
        "train_seconds": round(result.metrics.get("train_runtime", 0.0), 1),
    }
    with atomic_path(final_dir) as tmp:
        trainer.model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / JUDGE_META_FILE).write_text(
            json.dumps(
                {
                    "prompt_style": args.prompt_style,
                    "max_new_tokens": args.max_new_tokens,
                    "trained_by": "egt train sft",
                }
            )
        )
        atomic_write_json(tmp / "sft_summary.json", summary)
    if not args.keep_checkpoints:
        shutil.rmtree(checkpoint_dir(final_dir), ignore_errors=True)
    return summary


def set_pad_token(processor, model, config) -> None:
    """What ``SFTTrainer`` does when it builds its own collator: a pad token on tokenizer and model."""
    tokenizer = getattr(processor, "tokenizer", processor)
    pad = config.pad_token or tokenizer.pad_token or tokenizer.eos_token
    if pad not in tokenizer.get_vocab():
        raise EgtError(f"field 'pad_token': {pad!r} is not in the tokenizer's vocabulary")
    tokenizer.pad_token = pad
    model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id


def make_sft_trainer(
    model,
    processor,
    is_vision: bool,
    examples,
    images_root,
    args: JudgeSFTArgs,
    config,
    output_dir: str | None = None,
    callbacks=None,
):
    """The stage-1 trainer: pre-tokenised data and :class:`~egt.train.sft_trainer.JudgeSFTTrainer`.

    ``config`` is copied (``output_dir`` replaced when given, and the two settings a pre-tokenised
    dataset needs); the caller's object is left as it was. With ``pretokenize`` and
    ``completion_head`` off this is plain TRL: its per-batch vision collator and fused LM head.
    """
    import copy

    from egt.train.sft_trainer import JudgeSFTTrainer, PlainSFTTrainer

    config = copy.copy(config)
    if output_dir is not None:
        config.output_dir = output_dir
    too_long: list[int] = []
    if args.pretokenize:
        set_pad_token(processor, model, config)
        dataset, collator, too_long = prepare_sft_data(
            examples, images_root, args.prompt_style, processor, is_vision, config, pixel_cache_mb=args.pixel_cache_mb
        )
    else:
        dataset, collator = build_sft_dataset(examples, images_root, args.prompt_style, is_vision), None
    if collator is not None:
        config.dataset_kwargs = {**(config.dataset_kwargs or {}), "skip_prepare_dataset": True}
        config.remove_unused_columns = False
    trainer_cls = JudgeSFTTrainer if args.completion_head else PlainSFTTrainer
    trainer = trainer_cls(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=processor,
        data_collator=collator,
        callbacks=callbacks,
    )
    trainer.egt_too_long = [examples[i] for i in too_long]  # (pair, swapped, trace) skipped for max_length
    if too_long:
        import logging

        ids = ", ".join(f"{examples[i][0].id}{'/swapped' if examples[i][1] else ''}" for i in too_long[:5])
        logging.getLogger(__name__).warning(
            "skipped %d of %d examples longer than max_length %s (not truncated): %s%s",
            len(too_long),
            len(examples),
            config.max_length,
            ids,
            " …" if len(too_long) > 5 else "",
        )
    return trainer
