"""``egt rm train`` (Bradley–Terry reward model) and ``egt rm ensemble`` (z-normalised RM ensemble)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from egt.config import parse_config
from egt.report import console, print_table


@dataclass
class RewardDataArgs:
    """What to train the reward model on, and on which backbone."""

    sources: list[str] = field(
        metadata={
            "help": "Preference sources 'PATH[,name=..,n=..,weight=..,images_root=..,split=..,format=..]'; "
            "'hf:NAME' loads an HF dataset (see egt.rm.sources)."
        }
    )
    model: str = field(
        default="tiny",
        metadata={
            "help": "Backbone: a model folder or hub id, or 'tiny' (Qwen2.5-VL) / 'tiny-text' (Qwen2) built offline "
            "with a tokenizer trained on the training texts."
        },
    )
    mix_size: int = field(default=0, metadata={"help": "With weights: total pairs of the weighted sources (0 = off)."})
    mix_seed: int = field(default=0, metadata={"help": "Seed of the data mix."})
    skip_bad: bool = field(
        default=False,
        metadata={"help": "Skip and count bad records (identical responses, undecodable images) instead of stopping."},
    )
    check_images: bool = field(default=True, metadata={"help": "Decode every image before training."})
    eval_data: str = field(default="", metadata={"help": "Optional pairs file to evaluate on after training."})
    dtype: str = field(default="auto", metadata={"help": "auto | float32 | bfloat16 | float16."})


def train(argv: list[str], prog: str) -> int:
    from egt.models.training import cpu_defaults_without_accelerator

    data, args = parse_config(  # the config is named: --help reads it from the help cache, no transformers import
        [RewardDataArgs, "egt.rm.trainer:RewardModelConfig"],
        argv,
        prog,
        "Train a scalar reward model (Bradley–Terry) on image + text preference pairs.",
        # a CPU run unless the recipe says otherwise
        defaults={**cpu_defaults_without_accelerator(), "output_dir": "runs/rm"},
    )
    from egt.data.atomic import atomic_write_json
    from egt.rm.backbones import TINY_KINDS, build_tiny_backbone, pair_texts
    from egt.rm.model import RewardModel
    from egt.rm.sources import mix_sources
    from egt.rm.trainer import train_reward_model

    reads_images = data.model != "tiny-text"
    mix = mix_sources(
        data.sources,
        seed=data.mix_seed,
        mix_size=data.mix_size,
        skip_bad=data.skip_bad,
        check_images=data.check_images,
        reads_images=reads_images,
    )
    out = Path(args.output_dir)
    print_table(
        "data mix",
        ["source", "available", "taken", "unique", "with images", "skipped"],
        [
            [s["name"], s["available"], s["taken"], s["unique"], s["with_images"], s["skipped"] or "-"]
            for s in mix.report["sources"]
        ],
    )
    backbone = data.model
    if data.model in TINY_KINDS:
        backbone = str(
            build_tiny_backbone(
                data.model, pair_texts(e.pair for e in mix.examples), out / "backbone-init", seed=args.seed
            )
        )
    model, processor = RewardModel.from_backbone(
        backbone, args.head_config(), dtype=data.dtype, device="cpu" if args.use_cpu else "auto", seed=args.seed
    )
    trainer = train_reward_model(
        model, processor, mix.examples, args, reward_meta={"backbone": data.model, "data_mix": mix.report}
    )
    atomic_write_json(out / "data_mix.json", mix.report)
    last = next((row for row in reversed(trainer.state.log_history) if "accuracy" in row), {})
    console.print(
        f"final train accuracy {last.get('accuracy', float('nan')):.3f}, "
        f"margin {last.get('margin', float('nan')):.3f}; wrote {out}"
    )
    if data.eval_data:
        _evaluate(out, data.eval_data)
    return 0


def _evaluate(model_dir: Path, data_path: str) -> None:
    from egt.evaluation.report import write_eval_outputs
    from egt.evaluation.runner import evaluate
    from egt.records import default_images_root, read_pairs
    from egt.rm.scoring import RewardModelJudge

    judge = RewardModelJudge.from_pretrained(model_dir)
    report, predictions = evaluate(
        judge, read_pairs(data_path), order="stored", images_root=default_images_root(data_path), batch_size=64
    )
    report["data"] = data_path
    write_eval_outputs(model_dir / "eval", report, predictions)
    console.print(f"{data_path}: accuracy {report.get('accuracy')}")


@dataclass
class EnsembleArgs:
    """Combine reward models: mean of z-scores fitted on a calibration set."""

    members: list[str] = field(metadata={"help": "Reward model folders (egt rm train outputs)."})
    calibration: str = field(
        metadata={"help": "Pairs file whose responses fit each member's mean and std (labels unused)."}
    )
    text_member: str = field(default="", metadata={"help": "Optional text reward model for inputs without images."})
    calibration_limit: int = field(default=0, metadata={"help": "Use only the first N calibration pairs (0 = all)."})
    output_dir: str = field(default="runs/rm/ensemble", metadata={"help": "Output folder (egt_ensemble.json)."})
    batch_size: int = field(default=16, metadata={"help": "Responses per forward."})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda."})


def ensemble(argv: list[str], prog: str) -> int:
    from egt.records import default_images_root, open_images, read_pairs
    from egt.rm.collate import ScoreItem
    from egt.rm.ensemble import RewardEnsemble
    from egt.rm.scoring import RewardModelJudge

    (args,) = parse_config([EnsembleArgs], argv, prog, "Build a z-normalised reward-model ensemble.")
    pairs = read_pairs(args.calibration)[: args.calibration_limit or None]
    root = default_images_root(args.calibration)

    def load(path: str) -> RewardModelJudge:
        return RewardModelJudge.from_pretrained(path, batch_size=args.batch_size, device=args.device)

    members = [load(p) for p in args.members]
    text_member = load(args.text_member) if args.text_member else None
    items = [ScoreItem(p.question, r, open_images(p, root)) for p in pairs for r in p.responses]
    ens = RewardEnsemble.calibrate(members, items, text_member, name=Path(args.output_dir).name)
    ens.save(args.output_dir, extra={"calibration": {"data": args.calibration, "n_pairs": len(pairs)}})
    rows = [[s.path, f"{s.mean:.4f}", f"{s.std:.4f}"] for s in ens.stats]
    if ens.text_stats:
        rows.append([f"{ens.text_stats.path} (text)", f"{ens.text_stats.mean:.4f}", f"{ens.text_stats.std:.4f}"])
    print_table(f"ensemble → {args.output_dir}", ["member", "mean", "std"], rows)
    console.print(
        f"wrote {args.output_dir}/egt_ensemble.json; evaluate it with: egt eval --model {args.output_dir} --data ..."
    )
    return 0
