"""The ``egt traces`` run: ask the teacher for what is missing, filter, write (module doc of the package).

Outputs in ``--output_dir``:

* ``requests.jsonl`` — the resumable store (:mod:`egt.data.store`): its header is the teacher's
  settings, then one line per *answered* request, appended as it arrives. A rerun with the same
  settings asks only for the requests without an answer (failed ones included); an answer whose
  prompt has changed since (the record was edited) is asked again.
* ``traces.jsonl`` — the kept pairs as read, ``meta.traces = [stored-order trace, swapped-order
  trace]`` (``null`` for an order not asked: ``--order stored | random``), their image files
  beside it under the same relative paths (hard links where the file system allows; embedded
  images as PNG under ``images/embedded/``), so ``egt train sft --data DIR/traces.jsonl`` needs
  no ``--images_dir``.
* ``dropped.jsonl`` — one line per pair not kept: its id, the reason (``disagrees_with_label``,
  ``format``, or ``request_failed``: asked again on a rerun) and each order's outcome.
* ``stats.json`` — counts, retries, tokens and the settings (``--reveal_label`` included).

``--samples N`` asks in rounds: round k asks the k-th sample of every order that has no faithful
trace yet among its first k answers, so a strong teacher costs one request per order.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from egt.benchmarks import get_benchmark
from egt.benchmarks.images import check_images
from egt.clients import ChatFailed
from egt.data.atomic import atomic_write_json, atomic_write_jsonl
from egt.data.presentation import seeded_coin
from egt.data.readers import check_unique_ids, resolve_image_path
from egt.data.store import ResumableStore
from egt.errors import EgtError
from egt.judge.base import original_choice
from egt.judge.parse import parse_verdict
from egt.pipelines.traces.config import TracesArgs
from egt.pipelines.traces.teachers import Job, make_teacher, teacher_text
from egt.records import PreferencePair, default_images_root
from egt.report import console

__all__ = ["REQUESTS_FILE", "TRACES_FILE", "load_pairs", "make_traces", "verdict_of"]

TRACES_FILE, STATS_FILE, DROPPED_FILE, REQUESTS_FILE = "traces.jsonl", "stats.json", "dropped.jsonl", "requests.jsonl"
FAITHFUL, FORMAT, DISAGREES, FAILED = "faithful", "format", "disagrees_with_label", "request_failed"


def load_pairs(args: TracesArgs) -> tuple[list[PreferencePair], Path]:
    """The pairs (as ``egt eval`` reads them) and their images root; every image checked to exist."""
    if args.images_dir and not Path(args.images_dir).is_dir():
        raise EgtError(f"--images_dir: {args.images_dir}: no such folder")
    root = Path(args.images_dir) if args.images_dir else default_images_root(args.data)
    pairs = get_benchmark(args.benchmark, args.fields).load(args.data, root)
    if args.limit:
        pairs = pairs[: args.limit]
    if not pairs:
        raise EgtError(f"{args.data}: no pairs to write traces for")
    check_unique_ids((p.id for p in pairs), args.data, "egt traces stores each pair's answers by its id")
    pairs, _ = check_images(pairs, root, reads_images=True, reason="the teacher is shown every image")
    return pairs, root


def orders_of(pair: PreferencePair, order: str, seed: int) -> list[bool]:
    """The presentation orders (swapped?) to write a trace for: both, stored, or the pair's seeded coin."""
    if order == "both":
        return [False, True]
    if order == "stored":
        return [False]
    return [seeded_coin(seed, pair.id)]  # egt.train.sft's --order random draws the same coin


def prompt_digest(job: Job, args: TracesArgs) -> str:
    """What the teacher was shown, hashed: the prompt text and the image references."""
    refs = [im if isinstance(im, str) else hashlib.sha1(im.tobytes()).hexdigest() for im in job.pair.images]
    text = teacher_text(job, args.prompt_style, args.reveal_label) + "\0" + "\0".join(refs)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def verdict_of(text: str, pair: PreferencePair, swapped: bool) -> str:
    """``faithful`` (strict parse, agrees with the label in this order), ``disagrees_with_label`` or ``format``."""
    verdict = parse_verdict(text)
    if verdict is None:
        return FORMAT
    return FAITHFUL if original_choice(verdict.choice, swapped) == pair.preferred else DISAGREES


class Answers:
    """The store's answers that still fit the data: ``get(job)`` is the stored reply text or None."""

    def __init__(self, store: ResumableStore, args: TracesArgs):
        self.store, self.args = store, args

    def get(self, job: Job) -> str | None:
        record = self.store.get(job.key)
        return record["text"] if record and record.get("prompt") == prompt_digest(job, self.args) else None

    def outcome(self, pair: PreferencePair, swapped: bool, upto: int) -> tuple[str | None, int]:
        """The first faithful trace among samples < ``upto`` (or None) and how many samples are answered."""
        for k in range(upto):
            text = self.get(Job(pair, swapped, k))
            if text is None:
                return None, k
            if verdict_of(text, pair, swapped) == FAITHFUL:
                return text, k + 1
        return None, upto


def make_traces(args: TracesArgs, loading=None, vllm_args=None) -> dict:
    """Run ``egt traces`` (module doc); returns the stats written to ``stats.json``."""
    args.check()
    pairs, root = load_pairs(args)
    teacher = make_teacher(args, root, loading, vllm_args)  # a local teacher loads here: still no output
    out = Path(args.output_dir)
    fresh = not (out / REQUESTS_FILE).exists()
    out.mkdir(parents=True, exist_ok=True)
    store = ResumableStore.open(out / REQUESTS_FILE, args.teacher_settings(), overwrite=args.overwrite)
    answers = Answers(store, args)
    slots = [(pair, swapped) for pair in pairs for swapped in orders_of(pair, args.order, args.seed)]
    resumed = sum(answers.get(Job(p, s, k)) is not None for p, s in slots for k in range(args.samples))
    now = Counter()
    errors: dict[str, str] = {}
    started = time.monotonic()
    try:
        for k in range(args.samples):
            todo = [Job(p, s, k) for p, s in slots if needs_asking(answers, p, s, k)]
            if todo:
                console.print(f"round {k + 1}/{args.samples}: asking {teacher.name} {len(todo)} requests")
            for job, reply in teacher.ask(todo) if todo else ():
                now["asked"] += 1
                now["retries"] += reply.retries
                if isinstance(reply, ChatFailed):
                    now["failed"] += 1
                    errors[job.key] = reply.error
                    continue
                now["answered"] += 1
                now["prompt_tokens"] += reply.prompt_tokens or 0
                now["completion_tokens"] += reply.completion_tokens or 0
                store.append([answer_record(job, reply, args)])
    except EgtError:  # a wrong key / model / URL: a store this run started and nothing answered is not kept
        if fresh and not store.records:
            store.close()
            (out / REQUESTS_FILE).unlink()
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    finally:
        store.close()
    return write_outputs(out, pairs, root, answers, args, teacher.name, now, errors, resumed, started)


def needs_asking(answers: Answers, pair: PreferencePair, swapped: bool, k: int) -> bool:
    """Sample ``k`` of an order is asked when it has no answer yet and samples ``0..k-1`` are all
    answered, none faithful."""
    trace, answered = answers.outcome(pair, swapped, k)
    return trace is None and answered == k and answers.get(Job(pair, swapped, k)) is None


def answer_record(job: Job, reply, args: TracesArgs) -> dict:
    return {
        "id": job.key,
        "pair": job.pair.id,
        "swapped": job.swapped,
        "sample": job.sample,
        "prompt": prompt_digest(job, args),
        "text": reply.text,
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "retries": reply.retries,
        "finish_reason": reply.finish_reason,
    }


def judge_pair(pair: PreferencePair, answers: Answers, args: TracesArgs, errors: dict) -> dict:
    """One pair's outcome: ``kept`` with its traces, or the reason it is not, with each order's outcome."""
    traces: list[str | None] = [None, None]
    orders = {}
    for swapped in orders_of(pair, args.order, args.seed):
        trace, answered = answers.outcome(pair, swapped, args.samples)
        name = "swapped" if swapped else "stored"
        if trace is not None:
            traces[int(swapped)] = trace
            orders[name] = {"outcome": FAITHFUL, "samples": answered}
        elif answered < args.samples:
            error = errors.get(Job(pair, swapped, answered).key, "not answered yet")
            orders[name] = {"outcome": FAILED, "samples": answered, "error": error}
        else:
            seen = {verdict_of(answers.get(Job(pair, swapped, k)), pair, swapped) for k in range(answered)}
            orders[name] = {"outcome": DISAGREES if DISAGREES in seen else FORMAT, "samples": answered}
    outcomes = {o["outcome"] for o in orders.values()}
    reason = next((r for r in (FAILED, DISAGREES, FORMAT) if r in outcomes), None)
    return {"id": pair.id, "reason": reason, "orders": orders, "traces": traces}


def copy_images(pair: PreferencePair, root: Path, out: Path) -> list[str]:
    """The pair's images beside ``traces.jsonl``: a file keeps its path relative to the images root
    (hard-linked, else copied), an embedded image becomes ``images/embedded/<hash>_<i>.png``."""
    refs = []
    for i, image in enumerate(pair.images):
        if isinstance(image, str):
            source = resolve_image_path(image, root, record_id=pair.id)
            ref = source.relative_to(Path(root).resolve())
        else:
            source, ref = None, Path("images", "embedded", f"{hashlib.sha1(pair.id.encode()).hexdigest()}_{i}.png")
        target = out / ref
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            if source is None:
                image.convert("RGB").save(target)
            else:
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copyfile(source, target)
        refs.append(ref.as_posix())
    return refs


def write_outputs(out, pairs, root, answers, args, teacher_name, now, errors, resumed, started) -> dict:
    kept, dropped = [], []
    samples_used = Counter()
    for pair in pairs:
        result = judge_pair(pair, answers, args, errors)
        if result["reason"] is not None:
            dropped.append({k: v for k, v in result.items() if k != "traces"})
            continue
        for o in result["orders"].values():
            samples_used[o["samples"]] += 1
        meta = {**pair.meta, "traces": result["traces"]}
        kept.append(replace(pair, images=copy_images(pair, root, out), meta=meta).to_json())
    reasons = Counter(d["reason"] for d in dropped)
    stored = answers.store.records.values()
    stats = {
        "teacher": teacher_name,
        "settings": {**args.teacher_settings(), "order": args.order, "samples": args.samples, "data": args.data},
        "pairs": len(pairs),
        "kept": len(kept),
        "dropped_disagrees_with_label": reasons[DISAGREES],
        "dropped_format": reasons[FORMAT],
        "unfinished_request_failed": reasons[FAILED],
        "requests": {
            "asked": now["asked"],
            "answered": now["answered"],
            "failed": now["failed"],
            "retries": now["retries"],
            "reused_from_earlier_runs": resumed,
        },
        "samples_used_per_kept_trace": {str(k): v for k, v in sorted(samples_used.items())},
        "tokens": {
            "prompt": sum(r.get("prompt_tokens") or 0 for r in stored),
            "completion": sum(r.get("completion_tokens") or 0 for r in stored),
            "prompt_this_run": now["prompt_tokens"],
            "completion_this_run": now["completion_tokens"],
        },
        "wall_seconds": round(time.monotonic() - started, 2),
    }
    atomic_write_jsonl(out / DROPPED_FILE, dropped)
    atomic_write_jsonl(out / TRACES_FILE, kept)
    atomic_write_json(out / STATS_FILE, stats)
    return stats
