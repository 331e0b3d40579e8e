"""SFT on chat ``messages`` records through TRL's ``SFTTrainer``, loss on the assistant turn only.

The self-compare dataset (and any ``{"messages": [...]}`` JSONL) is turned into TRL's
conversational *prompt–completion* format: every turn but the last is the prompt, the last
(assistant) turn is the completion. ``SFTTrainer`` then masks the prompt out of the loss
(``completion_only_loss``) with the model's own chat template, whatever the template is; TRL's
``assistant_only_loss`` would instead need ``{% generation %}`` markers in the template, which
few templates (and not our tiny model's) have. The end-of-turn token is part of the completion, so
the model learns to stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from egt.data.readers import iter_jsonl
from egt.errors import EgtError

ROLES = ("system", "user", "assistant")


def check_messages(obj: Any, loc: str) -> list[dict]:
    """Validate one record's ``messages``: a list of {role, content} ending with the assistant."""
    if not isinstance(obj, dict):
        raise EgtError(f"{loc}: expected a JSON object, got {type(obj).__name__}")
    messages = obj.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        raise EgtError(f"{loc}: field 'messages': expected a list of at least 2 turns")
    for turn in messages:
        if not isinstance(turn, dict) or turn.get("role") not in ROLES or not isinstance(turn.get("content"), str):
            raise EgtError(f"{loc}: field 'messages': every turn needs a role ({'/'.join(ROLES)}) and string content")
    if messages[-1]["role"] != "assistant":
        raise EgtError(f"{loc}: field 'messages': the last turn must be the assistant's")
    return messages


def read_sft_records(path: str | Path) -> list[list[dict]]:
    """The conversations of a ``messages`` JSONL file; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise EgtError(f"{path}: no such file")
    conversations = [check_messages(obj, f"{path}: line {lineno}") for lineno, obj in iter_jsonl(path)]
    if not conversations:
        raise EgtError(f"{path}: no records")
    return conversations


def to_prompt_completion(conversations: Sequence[list[dict]]):
    """A ``datasets.Dataset`` of conversational prompt–completion rows."""
    import datasets

    return datasets.Dataset.from_dict(
        {"prompt": [list(c[:-1]) for c in conversations], "completion": [[c[-1]] for c in conversations]}
    )


def sft_train(model, tokenizer, conversations: Sequence[list[dict]], config, quiet: bool = False) -> list[dict]:
    """Train ``model`` in place with ``SFTTrainer``; returns the trainer's log history.

    ``config`` is a ``trl.SFTConfig``; on CPU pass ``use_cpu=True, bf16=False``. ``quiet`` drops
    the trainer's printed logs (the history is still returned).
    """
    from transformers import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=model, args=config, train_dataset=to_prompt_completion(conversations), processing_class=tokenizer
    )
    if quiet:
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
    trainer.train()
    return list(trainer.state.log_history)
