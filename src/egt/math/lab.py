"""The CPU self-compare lab: a tiny text model learns arithmetic word problems, then one round of
self-compare (build + train) against a plain-SFT control with the same compute budget.

Per seed: generate problems (:mod:`egt.math.problems`); train a byte-level BPE tokenizer on them
(:func:`egt.models.tiny.train_tokenizer`) and a tiny ``Qwen2ForCausalLM`` from scratch by SFT
(TRL's ``SFTTrainer``); measure greedy accuracy on held-out problems ("before"). Then one
self-compare round: K sampled attempts per training question, graded, wrong ones compared with the
reference and corrected (:func:`egt.math.selfcompare.run_build`), kept only if the correction
verifies. The arms continue from the same base weights for the same number of optimizer steps
and batch size:

- ``plain SFT``: the original training data only (the control: "more epochs of the original data");
- ``self-compare``: the self-compare SFT records (comparison + verified) mixed with the original data;
- ``verified only`` (ablation): the verified-solution records alone mixed with the original data,
  which tells the comparison records' effect apart from that of rejection-sampled solutions.

Same steps and sequences per step means the arms see different numbers of tokens (comparison
records are longer); the bench prints the expected token count of each arm.

Departure from the method, stated plainly: the comparer here is the scripted
:class:`egt.math.compare.ReferenceComparer` (strict line-by-line matching of steps), which stands
in for a stronger comparer model — a model this small cannot write a correction that verifies,
so using it as its own comparer would keep nothing and test nothing. The lab therefore tests the
pipeline and the training signal of comparison data, not a model's ability to compare.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from egt.math.answers import CORRECT
from egt.math.compare import ReferenceComparer
from egt.math.data import MathItem
from egt.math.evaluate import evaluate_model, summarize
from egt.math.generate import SamplingArgs, question_messages, sample_solutions
from egt.math.journal import Journal, chunk_seed
from egt.math.problems import lab_splits
from egt.math.selfcompare import run_build, sft_records
from egt.math.train import sft_train
from egt.models import tiny
from egt.models.load import LoadedModel
from egt.models.tiny import train_tokenizer
from egt.models.training import cpu_sft_defaults


@dataclass
class TinyTextConfig(tiny.TinyTextConfig):
    """The lab model's sizes (:class:`egt.models.tiny.TinyTextConfig`, smaller: the texts are short sums)."""

    vocab_size: int = 512
    hidden_size: int = 64
    intermediate_size: int = 192
    max_position_embeddings: int = 512


@dataclass
class MathLabConfig:
    """The lab's sizes; the defaults run one seed in about three minutes on 2 CPU cores."""

    n_train: int = field(default=1200, metadata={"help": "Training problems (base SFT; also the self-compare pool)."})
    n_test: int = field(default=200, metadata={"help": "Held-out problems for accuracy."})
    n_pool: int = field(default=400, metadata={"help": "Training questions that get a self-compare round."})
    max_ops: int = field(default=3, metadata={"help": "Operations per problem (2..max_ops)."})
    base_steps: int = field(default=800, metadata={"help": "Optimizer steps of the base SFT."})
    extra_steps: int = field(
        default=200, metadata={"help": "Optimizer steps of each arm after the base (same for both)."}
    )
    batch_size: int = field(default=16, metadata={"help": "Sequences per optimizer step (both arms)."})
    learning_rate: float = field(default=3e-3, metadata={"help": "Peak LR of the base SFT (cosine to 0)."})
    extra_learning_rate: float = field(default=1e-3, metadata={"help": "Peak LR of each arm (cosine to 0)."})
    k_samples: int = field(default=4, metadata={"help": "Sampled attempts per pool question (K)."})
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature of the attempts."})
    max_new_tokens: int = field(
        default=80, metadata={"help": "Longest generated solution (lab solutions are ≤ ~50 tokens)."}
    )
    eval_batch_size: int = field(default=100, metadata={"help": "Questions per generation call."})
    ablation: bool = field(default=True, metadata={"help": "Also train a 'verified only' arm (no comparison records)."})


def lab_tokenizer(problems: list[dict], vocab_size: int):
    """BPE trained on the problems, their chat rendering included, with Qwen's chat template."""
    return train_tokenizer([p["question"] + "\n" + p["answer"] for p in problems], vocab_size)


def sft_config(out_dir: str, steps: int, lr: float, batch_size: int, seed: int):
    from trl import SFTConfig

    lab = dict(  # the lab's own recipe over the CPU defaults (plain Adam: β2 = 0.999)
        output_dir=out_dir,
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        adam_beta2=0.999,
        lr_scheduler_type="cosine",
        warmup_steps=min(20, steps // 10),
        weight_decay=0.0,
        logging_steps=max(1, steps // 10),
        save_strategy="no",
        activation_checkpointing=False,
        disable_tqdm=True,
        seed=seed,
        data_seed=seed,
        max_length=512,
        dataloader_num_workers=0,
    )
    return SFTConfig(**{**cpu_sft_defaults(), **lab})


def conversations(problems: list[dict]) -> list[list[dict]]:
    return [question_messages(p["question"]) + [{"role": "assistant", "content": p["answer"]}] for p in problems]


def items_of(problems: list[dict]) -> list[MathItem]:
    return [MathItem(p["id"], p["question"], p["answer"], p["answer"].rsplit("#### ", 1)[1].strip()) for p in problems]


def accuracy(loaded: LoadedModel, items: list[MathItem], cfg: MathLabConfig, work: Path, tag: str) -> dict:
    sampling = SamplingArgs(
        n_samples=1, temperature=0.0, max_new_tokens=cfg.max_new_tokens, batch_size=cfg.eval_batch_size
    )
    records = evaluate_model(loaded, items, sampling, Journal(work / f"eval-{tag}", {"tag": tag}, overwrite=True))
    report = summarize(records)
    return {"accuracy": report["accuracy"], "unanswered_rate": report["unanswered_rate"]}


def count_tokens(tokenizer, convs: list[list[dict]]) -> float:
    """Mean tokens per rendered conversation."""
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in convs]
    return sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]) / max(1, len(convs))


def train_base(cfg: MathLabConfig, model_cfg: TinyTextConfig, seed: int, work: Path):
    """Problems, tokenizer and the base model trained by SFT: ``(train, test, tokenizer, model, log)``."""
    import datasets

    datasets.disable_progress_bars()
    train, test = lab_splits(cfg.n_train, cfg.n_test, seed, cfg.max_ops)
    tokenizer = lab_tokenizer(train, model_cfg.vocab_size)
    model = tiny.build_text_model(tokenizer, model_cfg, seed)
    history = []
    if cfg.base_steps > 0:
        history = sft_train(
            model,
            tokenizer,
            conversations(train),
            sft_config(str(work / "base"), cfg.base_steps, cfg.learning_rate, cfg.batch_size, seed),
            quiet=True,
        )
    model.eval()
    return train, test, tokenizer, model, history


def make_lab(cfg: MathLabConfig, model_cfg: TinyTextConfig, seed: int, out: str | Path) -> dict:
    """Write ``train.jsonl``, ``test.jsonl`` (GSM8K format) and the base model to ``out/model``."""
    from egt.data.atomic import atomic_path, atomic_write_jsonl

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        train, test, tokenizer, model, history = train_base(cfg, model_cfg, seed, Path(tmp))
    atomic_write_jsonl(out / "train.jsonl", train)
    atomic_write_jsonl(out / "test.jsonl", test)
    with atomic_path(out / "model") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    losses = [h["loss"] for h in history if "loss" in h]
    return {
        "train problems": len(train),
        "test problems": len(test),
        "base steps": cfg.base_steps,
        "final loss": f"{losses[-1]:.4f}" if losses else "-",
        "model": str(out / "model"),
    }


def run_lab(
    cfg: MathLabConfig, model_cfg: TinyTextConfig, seed: int, work_dir: str | Path | None = None, log=print
) -> dict:
    """One seed of the lab; returns accuracies before/after per arm and the build's counts."""
    t0 = time.time()
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        work = Path(tmp)
        train, test, tokenizer, model, base_log = train_base(cfg, model_cfg, seed, work)
        original = conversations(train)
        loaded = LoadedModel(model=model, processor=tokenizer, is_vision=False)
        test_items = items_of(test)
        before = accuracy(loaded, test_items, cfg, work, "before")
        log(f"seed {seed}: base trained ({time.time() - t0:.0f}s), held-out accuracy {before['accuracy']:.1%}")

        # one self-compare round over a pool of training questions
        pool = items_of(train[: cfg.n_pool])
        sampling = SamplingArgs(
            n_samples=cfg.k_samples,
            temperature=cfg.temperature,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=max(1, cfg.eval_batch_size // cfg.k_samples),
            seed=seed,
        )

        def attempts_for(c, chunk):
            return [
                (s, None)
                for s in sample_solutions(loaded, [it.question for it in chunk], sampling, chunk_seed(seed, c))
            ]

        records = run_build(
            pool,
            attempts_for,
            ReferenceComparer(match="text"),
            Journal(work / "build", {"seed": seed}),
            chunk_size=sampling.batch_size,
        )
        sft = sft_records(records)
        build_counts = _build_counts(records, sft)
        log(f"seed {seed}: self-compare build {build_counts} ({time.time() - t0:.0f}s)")

        arms = {"plain SFT": original, "self-compare": mix(sft, original, seed)}
        if cfg.ablation:
            arms["verified only"] = mix([r for r in sft if r["kind"] == "verified"], original, seed)
        after, tokens = {}, {}
        for arm, data in arms.items():
            # a fresh copy of the base weights; never copy.deepcopy a model a Trainer has prepared:
            # its instance-level ``forward`` would keep running the original's weights
            arm_model = tiny.build_text_model(tokenizer, model_cfg, seed)
            arm_model.load_state_dict(model.state_dict())
            arm_model.train()
            sft_train(
                arm_model,
                tokenizer,
                data,
                sft_config(
                    str(work / arm.replace(" ", "_")), cfg.extra_steps, cfg.extra_learning_rate, cfg.batch_size, seed
                ),
                quiet=True,
            )
            arm_model.eval()
            after[arm] = accuracy(
                LoadedModel(arm_model, tokenizer, False), test_items, cfg, work, arm.replace(" ", "_")
            )
            tokens[arm] = count_tokens(tokenizer, data) * cfg.extra_steps * cfg.batch_size  # expected, with shuffling
            log(f"seed {seed}: {arm}: held-out accuracy {after[arm]['accuracy']:.1%} ({time.time() - t0:.0f}s)")
    return {
        "seed": seed,
        "before": before,
        "after": after,
        "build": build_counts,
        "approx_tokens": tokens,
        "base_final_loss": next((h["loss"] for h in reversed(base_log) if "loss" in h), None),
        "seconds": time.time() - t0,
        "config": asdict(cfg),
        "model_config": asdict(model_cfg),
    }


def mix(sft: list[dict], original: list[list[dict]], seed: int) -> list[list[dict]]:
    """Self-compare conversations mixed into the original data, shuffled (seeded)."""
    mixed = [r["messages"] for r in sft] + list(original)
    random.Random(seed).shuffle(mixed)
    return mixed


def _build_counts(records: list[dict], sft: list[dict]) -> dict:
    from egt.math.selfcompare import count_outcomes

    counts = count_outcomes(records, sft)
    keep = (
        "attempts",
        CORRECT,
        "wrong",
        "unanswered",
        "kept",
        "rejected",
        "sft_comparison_records",
        "sft_verified_records",
    )
    return {k: counts[k] for k in keep}
