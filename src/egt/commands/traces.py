"""``egt traces``: EGT stage 1 on your own data — a teacher's reasoning traces, fidelity-filtered, resumable.

Writes ``<output_dir>/traces.jsonl`` (the kept pairs with ``meta.traces``, read by ``egt train sft
--data``), ``stats.json``, ``dropped.jsonl`` and the resumable ``requests.jsonl``
(:mod:`egt.pipelines.traces`). The teacher is an OpenAI-compatible endpoint (``--base_url``,
``--model NAME``) or a local checkpoint (``--model PATH``).
"""

from __future__ import annotations

from egt.config import parse_config
from egt.models.args import LoadingArgs, VllmArgs
from egt.pipelines.traces.config import TracesArgs
from egt.report import console, print_table


def main(argv: list[str], prog: str) -> int:
    args, loading, vllm_args = parse_config(
        [TracesArgs, LoadingArgs, VllmArgs],
        argv,
        prog,
        "Write reasoning traces for your pairs with a teacher model, keep the faithful ones (EGT stage 1).",
    )
    from egt.pipelines.traces.run import TRACES_FILE, make_traces

    stats = make_traces(args, loading, vllm_args)
    requests, tokens = stats["requests"], stats["tokens"]
    rows = [
        ["pairs", stats["pairs"]],
        ["kept", stats["kept"]],
        ["dropped: verdict disagrees with the label", stats["dropped_disagrees_with_label"]],
        ["dropped: format (not <think>…</think><answer>1|2</answer>)", stats["dropped_format"]],
        ["unfinished: a request failed (rerun to ask again)", stats["unfinished_request_failed"]],
        [
            "requests asked / answered / failed / retries",
            f"{requests['asked']} / {requests['answered']} / {requests['failed']} / {requests['retries']}",
        ],
        ["answers reused from earlier runs", requests["reused_from_earlier_runs"]],
        ["tokens prompt / completion (all runs)", f"{tokens['prompt']} / {tokens['completion']}"],
    ]
    print_table(f"egt traces → {args.output_dir}", ["", ""], rows)
    if not stats["kept"]:
        console.print("no pair kept: see dropped.jsonl for why (egt train sft needs at least one)")
        return 0
    console.print(f"next: egt train sft --data {args.output_dir}/{TRACES_FILE} --prompt_style {args.prompt_style}")
    return 0
