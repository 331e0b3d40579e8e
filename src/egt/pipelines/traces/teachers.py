"""The two trace teachers: an OpenAI-compatible endpoint, or a local checkpoint.

Both answer :class:`Job` s — one pair, one presentation order, one sample index — with the
judge's own prompt (:mod:`egt.judge.prompt`), and yield ``(job, reply)`` as replies arrive, where a
reply is a :class:`~egt.clients.ChatReply` or a :class:`~egt.clients.ChatFailed`.

* :class:`EndpointTeacher` sends the user turn with the images as ``image_url`` data URIs through
  :class:`egt.clients.ChatClient` (concurrency, retries, one-line errors); a sampled request
  carries a ``seed`` from (seed, pair id, order, sample), which vLLM and OpenAI honour.
* :class:`LocalTeacher` is the generative judge (:func:`egt.pipelines.judges.make_generative_judge`)
  on the transformers or vLLM backend; each sample is seeded by (seed, sample, batch).

With ``reveal_label`` the endpoint teacher is also told which response the label prefers
(rationale-style traces); by default it is not, and the trace is its own judgement.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from egt.clients import ChatClient, ChatFailed, ChatReply, user_message
from egt.data.presentation import derived_seed
from egt.errors import EgtError
from egt.judge.prompt import judge_user_text
from egt.pipelines.traces.config import TracesArgs
from egt.records import PreferencePair, open_images

__all__ = ["EndpointTeacher", "Job", "LocalTeacher", "make_teacher", "teacher_text"]

REVEAL = (
    "\n\nA careful human annotator judged Response {k} to be the better one. Write your comparison so "
    "that it explains why, in the same format."
)


@dataclass(frozen=True)
class Job:
    """One request: a pair shown in one order, the ``sample``-th time it is asked."""

    pair: PreferencePair
    swapped: bool
    sample: int

    @property
    def key(self) -> str:
        """The request's id in the store: the sample, the order, then the pair id (which may hold any character)."""
        return f"{self.sample}:{'swapped' if self.swapped else 'stored'}:{self.pair.id}"


def teacher_text(job: Job, style: str, reveal_label: bool) -> str:
    """The user turn's text: the judge's prompt in the job's order (plus the label, if revealed)."""
    a, b = job.pair.responses
    r1, r2 = (b, a) if job.swapped else (a, b)
    text = judge_user_text(job.pair.question, r1, r2, style)
    if reveal_label:
        text += REVEAL.format(k=1 + (job.pair.preferred ^ int(job.swapped)))
    return text


class EndpointTeacher:
    """A teacher behind an OpenAI-compatible chat endpoint (module doc)."""

    def __init__(self, args: TracesArgs, images_root: Path):
        self.args, self.images_root = args, images_root
        self.client = ChatClient(
            args.base_url,
            args.model,
            api_key_env=args.api_key_env,
            timeout=args.timeout,
            max_retries=args.max_retries,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            concurrency=args.concurrency,
        )
        self.name = self.client.name

    def messages(self, job: Job) -> list[dict]:
        text = teacher_text(job, self.args.prompt_style, self.args.reveal_label)
        return [user_message(text, open_images(job.pair, self.images_root))]

    def extra(self, job: Job) -> dict:
        if self.args.temperature == 0:
            return {}
        return {"seed": derived_seed(self.args.seed, job.pair.id, job.swapped, job.sample) % 2**31}

    def ask(self, jobs: Sequence[Job]) -> Iterator[tuple[Job, ChatReply | ChatFailed]]:
        return self.client.map(jobs, self.messages, self.extra)


class LocalTeacher:
    """A local checkpoint as teacher: the generative judge, ``batch_size`` requests per generate call."""

    def __init__(self, args: TracesArgs, images_root: Path, loading, vllm_args=None):
        from egt.judge.args import JudgeArgs
        from egt.pipelines.judges import make_generative_judge

        judge_args = JudgeArgs(
            model=args.model,
            batch_size=args.batch_size,
            max_new_tokens=args.max_tokens,
            temperature=args.temperature,
            prompt_style=args.prompt_style,
            seed=args.seed,
            backend=args.backend,
            dtype=loading.dtype,
            device=loading.device,
            attn_implementation=loading.attn_implementation,
            trust_remote_code=loading.trust_remote_code,
        )
        try:
            self.judge = make_generative_judge(judge_args, vllm_args)
        except EgtError as e:
            if Path(args.model).exists():
                raise
            raise EgtError(f"{e}; for a model behind an endpoint pass --base_url") from None
        self.args, self.images_root, self.name = args, images_root, f"local:{args.model}"

    def ask(self, jobs: Sequence[Job]) -> Iterator[tuple[Job, ChatReply | ChatFailed]]:
        import torch

        from egt.judge.base import JudgeRequest

        tokenizer = self.judge.loaded.tokenizer
        size = self.args.batch_size
        for start in range(0, len(jobs), size):
            batch = jobs[start : start + size]
            requests = [
                JudgeRequest(
                    j.pair, j.swapped, open_images(j.pair, self.images_root) if self.judge.reads_images else []
                )
                for j in batch
            ]
            seed = derived_seed(self.args.seed, "traces", batch[0].sample, batch[0].key)
            self.judge.seed = seed  # the vLLM backend seeds each request from it
            torch.manual_seed(seed)  # the transformers backend samples from the global generator
            for job, text in zip(batch, self.judge.generate(requests), strict=True):
                yield job, ChatReply(text=text, completion_tokens=len(tokenizer(text)["input_ids"]))


def make_teacher(args: TracesArgs, images_root: Path, loading=None, vllm_args=None):
    """The endpoint teacher when ``--base_url`` is given, else the local checkpoint ``--model``."""
    if args.base_url:
        return EndpointTeacher(args, images_root)
    return LocalTeacher(args, images_root, loading, vllm_args)
