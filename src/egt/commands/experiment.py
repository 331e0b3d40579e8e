"""``egt experiment``: the EGT experiment from a preset (configs/experiment/*.yaml); resumable, parallel."""

from __future__ import annotations

from dataclasses import dataclass, field

from egt.config import parse_config
from egt.errors import EgtError
from egt.report import console


@dataclass
class ExperimentRunArgs:
    report_only: bool = field(
        default=False, metadata={"help": "Only rebuild results.json / results.md / plots from finished cells."}
    )


def main(argv: list[str], prog: str) -> int:
    from egt.pipelines.experiment import ExperimentConfig, run_experiment, write_results

    cfg, run = parse_config(
        [ExperimentConfig, ExperimentRunArgs],
        argv,
        prog,
        "EGT's experiment: entropy curation and the low→high curriculum under RL, against the papers' baselines.",
    )
    cfg.check()
    outcome = None if run.report_only else run_experiment(cfg, log=console.print)
    results = write_results(cfg)
    console.print(f"results: {cfg.output_dir}/results.md, results.json, {len(results['plots'])} plot(s)")
    if outcome is not None and (outcome["failed"] or outcome["blocked"]):
        raise EgtError(
            f"{len(outcome['failed'])} unit(s) failed ({', '.join(outcome['failed'])}); "
            f"{len(outcome['blocked'])} could not run; rerun the same command to retry them"
        )
    return 0
