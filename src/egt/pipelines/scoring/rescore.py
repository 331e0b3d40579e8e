"""``egt score --rescore FILE``: re-measure the entropies of a scores file's rollouts under a checkpoint.

No generation: the rollouts of ``FILE`` (same prompts, same presentation order, same tokens) go
through :func:`egt.entropy.teacher_forced.rollout_entropies` under ``--model`` (another checkpoint,
or the same one), and a new scores file is written with the *same verdicts* (they are the texts'
verdicts, parsed again) and the new per-rollout and per-item entropies and ``mixed_entropy``.
The header copies ``FILE``'s scoring config and says ``entropy_source: teacher_forced``, the new
checkpoint (path + fingerprint) under ``model``, and ``rescore_of`` (the source file and the
checkpoint that sampled it).

Which tokens: a file written with ``--keep_token_ids`` keeps each rollout's sampled ids
(``token_ids``) and is re-measured exactly (same checkpoint → the original entropies, to float
round-off). Otherwise the kept ``texts`` are re-tokenised with the new checkpoint's tokenizer; a
sampled segmentation need not be the tokenizer's canonical one, so the entropies are then of the
canonical tokens of the same text (the header says ``tokens: retokenised_texts``). A file with
neither is refused. Verdicts are checked: a rollout whose text no longer parses to its verdict is
an error.

The output is resumable like ``egt score`` (``FILE.partial``; :mod:`egt.entropy.score_store`).
Single process only (data-parallel rescoring is not built).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from egt import __version__
from egt.entropy.sampling import PieceDecoder
from egt.entropy.score_store import check_existing_output, fingerprint, jsonable, open_partial, read_scores
from egt.entropy.signals import answer_token_entropy, reasoning_peak_entropy, reasoning_sentence_entropy
from egt.entropy.summary import summarise_item
from egt.entropy.teacher_forced import rollout_entropies
from egt.errors import EgtError
from egt.judge.base import JudgeRequest
from egt.judge.parse import parse_verdict
from egt.models.load import load_from_args
from egt.pipelines.scoring.config import ENTROPY_DESCRIPTIONS
from egt.pipelines.scoring.run import fill_store, finish_run
from egt.records import open_images, read_pairs

__all__ = ["rescore_pool"]


def rescore_pool(
    model_args,
    scores: str | Path,
    out: str | Path,
    *,
    data: str | Path | None = None,
    images_dir: str | Path | None = None,
    batch_size: int = 8,
    overwrite: bool = False,
    parquet: bool = False,
    loaded=None,
    on_batch: Callable[[int], None] | None = None,
) -> dict:
    """Write ``out``: ``scores``' rollouts with entropies re-measured under ``model_args`` (module doc)."""
    start = time.perf_counter()
    out, scores = Path(out), Path(scores)
    if out.suffix != ".jsonl":
        raise EgtError(f"{out}: the scores file must end in .jsonl")
    if out.resolve() == scores.resolve():
        raise EgtError(f"--output_dir: {out}: is the file being rescored; write the rescored run to another folder")
    if batch_size < 1:
        raise EgtError(f"--batch_size: must be ≥ 1, got {batch_size}")
    meta, old_records = read_scores(scores)
    old_header = meta.get("header")
    if not old_header:
        raise EgtError(f"--rescore: {scores}: no sidecar {scores.name}.meta.json, so its scoring config is unknown")
    sc = old_header["scoring"]
    if all("token_ids" in r for r in old_records):
        tokens = "token_ids"
    elif all("texts" in r for r in old_records):
        tokens = "retokenised_texts"
    else:
        raise EgtError(
            f"--rescore: {scores}: its records keep neither rollout texts nor token ids "
            "(it was scored with --keep_texts false); nothing to re-measure"
        )
    data = Path(data or old_header["data"]["path"])
    if fingerprint(data) != old_header["data"]["fingerprint"]:
        raise EgtError(
            f"--data: {data}: not the dataset {scores} was scored on (fingerprint "
            f"{fingerprint(data)} vs {old_header['data']['fingerprint']})"
        )
    by_id = {p.id: p for p in read_pairs(data)}
    missing = [r["id"] for r in old_records if r["id"] not in by_id]
    if missing:
        raise EgtError(f"--rescore: {len(missing)} id(s) of {scores} are not in {data} (first {missing[0]!r})")
    root = Path(images_dir or old_header["data"]["images_root"])

    loaded = loaded or load_from_args(model_args)
    model_path = Path(model_args.model)
    param = next(loaded.model.parameters())
    scoring = {
        **sc,
        "entropy_source": "teacher_forced",
        "entropy": ENTROPY_DESCRIPTIONS["teacher_forced"],
        "dtype": str(param.dtype).removeprefix("torch."),
        "device": param.device.type,
        "rescore_of": {
            "path": str(scores.resolve()),
            "fingerprint": fingerprint(scores),
            "model": old_header["model"],
            "entropy_source": sc.get("entropy_source", "generation"),
            "tokens": tokens,
        },
    }
    header = {
        "format": old_header["format"],
        "model": {
            "path": str(model_path.resolve()) if model_path.exists() else model_args.model,
            "fingerprint": fingerprint(model_path if model_path.exists() else model_args.model),
            "reads_images": loaded.is_vision,
        },
        "data": {**old_header["data"], "path": str(data.resolve()), "images_root": str(root.resolve())},
        "scoring": scoring,
        "runtime": {"batch_size": batch_size, "egt": __version__, "torch": torch.__version__},
    }
    ids = [r["id"] for r in old_records]
    if check_existing_output(out, header, overwrite):
        return {"out": str(out), "n_items": len(ids), "scored_now": 0, "resumed": len(ids), "complete_already": True}
    store = open_partial(out, header, set(ids), overwrite)
    resumed = len(store)
    batch_size = store.header["runtime"]["batch_size"]
    decoder = PieceDecoder(loaded.tokenizer)
    tokenizer = loaded.tokenizer

    def score(chunk: list[dict]) -> list[dict]:
        requests, completions, texts = [], [], []
        for r in chunk:
            pair = by_id[r["id"]]
            images = open_images(pair, root) if loaded.is_vision else []
            for k, swapped in enumerate(r["swapped"]):
                requests.append(JudgeRequest(pair=pair, swapped=swapped, images=images))
                if tokens == "token_ids":
                    completions.append(r["token_ids"][k])
                    texts.append(
                        r["texts"][k] if "texts" in r else tokenizer.decode(r["token_ids"][k], skip_special_tokens=True)
                    )
                else:
                    texts.append(r["texts"][k])
                    completions.append(tokenizer(r["texts"][k], add_special_tokens=False)["input_ids"])
        entropies = rollout_entropies(
            loaded,
            requests,
            completions,
            temperature=sc["temperature"],
            style=sc["prompt_style"],
            max_new_tokens=sc["max_new_tokens"],
        )  # [R, T]
        records, row = [], 0
        for r in chunk:
            rollouts = []
            for k, swapped in enumerate(r["swapped"]):
                ids_k, text = completions[row], texts[row]
                pieces, h = decoder(ids_k), entropies[row, : len(ids_k)]
                verdict = parse_verdict(text)
                rollouts.append(
                    {
                        "swapped": swapped,
                        "text": text,
                        "n_tokens": r["n_tokens"][k],
                        "answer_entropy": answer_token_entropy(h, pieces),
                        "sentence_entropy": reasoning_sentence_entropy(h, pieces),
                        "peak_entropy": reasoning_peak_entropy(h, pieces, sc.get("peak_k", 3)),
                        "choice": None if verdict is None else verdict.choice,
                    }
                )
                row += 1
            record = summarise_item(by_id[r["id"]], r["index"], rollouts, "texts" in r)
            if record["verdicts"] != r["verdicts"]:
                raise EgtError(
                    f"--rescore: id {r['id']!r}: verdicts {record['verdicts']} differ from the file's "
                    f"{r['verdicts']} (another tokenizer?)"
                )
            if "token_ids" in r:
                record["token_ids"] = r["token_ids"]
            records.append(jsonable(record))
        return records

    batches = [
        [r for r in old_records[b : b + batch_size] if r["id"] not in store]
        for b in range(0, len(old_records), batch_size)
    ]
    pending = [(number, chunk) for number, chunk in enumerate(batches) if chunk]
    fill_store(store, pending, score, desc="rescoring", total=len(ids) - resumed, on_batch=on_batch)
    return finish_run(out, store, ids, sc.get("lam", 0.5), parquet, resumed=resumed, start=start)
