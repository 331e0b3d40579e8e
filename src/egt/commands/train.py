"""``egt train sft``: stage-1 SFT of the judge (TRL's SFTConfig fields are accepted too)."""

from __future__ import annotations

from egt.config import parse_config
from egt.report import console, print_table


def sft(argv: list[str], prog: str) -> int:
    from egt.models.training import cpu_sft_defaults
    from egt.train.sft import JudgeSFTArgs, train_judge_sft  # torch-free at import; trl's config by name

    args, config = parse_config(
        [JudgeSFTArgs, "trl:SFTConfig"], argv, prog, "SFT a judge on reasoning traces.", defaults=cpu_sft_defaults()
    )
    summary = train_judge_sft(args, config)
    print_table(f"judge SFT → {config.output_dir}", ["", "value"], [[k, v] for k, v in summary.items()])
    console.print(f"fidelity filter dropped {summary['dropped_fidelity']} of {summary['n_pairs']} traces")
    return 0
