"""vLLM inside TRL's GRPO with images: one placeholder per image reaches vLLM (TRL issue 6294).

vLLM is not installed here. :class:`StandInLLM` takes the place of ``vllm.LLM`` in TRL's colocate
mode (``trl.generation.vllm_generation.LLM``, with TRL's ``is_vllm_available`` guard patched): it
records every request, expands its placeholders once the way vLLM's Qwen2-VL processor does
(image k's ``grid_t·grid_h·grid_w / merge²`` pads, from the image processor, replace the k-th
``<|image_pad|>``; pads past the images' count stay as they are), and answers with a
fixed well-formed completion with log-probs.

What this proves: the request our trainer builds carries one placeholder per image and the images
themselves, and expanding it once gives exactly the ids the training forward uses (with TRL's
pixel values: the step trains). Stock TRL 1.16 is run against the same stand-in as the control: it
sends the already-expanded ids. What it does not prove: how a real vLLM processes the request (its
Qwen2.5-VL processor is modelled, not run), nor anything about GPUs, weight sync or sampling.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch
import trl.generation.vllm_generation as vllm_generation
from trl import GRPOTrainer

from egt.errors import EgtError
from egt.models.load import load_model
from egt.records import read_pairs
from egt.rl.dataset import build_rl_dataset, presentation_rows
from egt.rl.trainer import JudgeGRPOTrainer
from egt.rl.vllm_prompts import collapse_image_placeholders
from entropy.test_backends import FakeSamplingParams
from rl.test_trainer import make_trainer

IMG, START, END = 9, 7, 8


@pytest.mark.parametrize(
    ("ids", "n_images", "want"),
    [
        ([1, START, IMG, IMG, IMG, IMG, END, 2], 1, [1, START, IMG, END, 2]),
        ([START, IMG, IMG, END, 3, START, IMG, END, 4], 2, [START, IMG, END, 3, START, IMG, END, 4]),
        ([1, START, IMG, END], 1, [1, START, IMG, END]),  # already one per image: unchanged
        ([1, 2, 3], 0, [1, 2, 3]),
        ([], 0, []),
    ],
)
def test_each_run_of_image_tokens_becomes_one(ids, n_images, want):
    assert collapse_image_placeholders(ids, IMG, n_images, START, END) == want
    assert collapse_image_placeholders(torch.tensor(ids, dtype=torch.long).tolist(), IMG) == want


@pytest.mark.parametrize(
    ("ids", "n_images", "words"),
    [
        ([START, IMG, IMG, END], 2, "1 runs of image tokens for 2 image"),
        ([START, IMG, END, START, IMG, END], 1, "2 runs of image tokens for 1 image"),
        ([1, IMG, IMG, END], 1, "positions 1..2 are not inside a vision start / end pair"),
        ([START, IMG, IMG], 1, "positions 1..2 are not inside"),
    ],
)
def test_ids_that_are_not_an_expanded_chat_prompt_are_an_error(ids, n_images, words):
    with pytest.raises(EgtError, match=words):
        collapse_image_placeholders(ids, IMG, n_images, START, END)


@pytest.fixture(scope="module")
def processor(tiny_judge_dir):
    return load_model(str(tiny_judge_dir), device="cpu", dtype="float32").processor


def test_collapsed_ids_are_the_tokenizer_only_rendering(processor, small_lab):
    """Collapsing the processor's expanded ids gives what the tokenizer alone makes of the same chat."""
    pairs = [p for p in read_pairs(small_lab / "rl_pool.jsonl")][:3]
    dataset = build_rl_dataset(pairs, presentation_rows(pairs, "random", 0), small_lab, "compact", True)
    config = load_model_config(processor)
    for row in dataset:
        images = row["images"]
        messages = trl_messages(row["prompt"], images)
        expanded = processor.apply_chat_template(
            [messages], add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"][0]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        plain = processor.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(expanded) > len(plain)  # the processor did expand
        got = collapse_image_placeholders(
            expanded, config["image"], len(images), config["vision_start"], config["vision_end"]
        )
        assert got == plain
        assert plain.count(config["image"]) == len(images)


def load_model_config(processor) -> dict:
    tok = processor.tokenizer
    return {
        "image": processor.image_token_id,
        "vision_start": tok.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end": tok.convert_tokens_to_ids("<|vision_end|>"),
    }


def trl_messages(prompt, images):
    from trl.data_utils import prepare_multimodal_messages

    return prepare_multimodal_messages(prompt, images=images)


# ---------------------------------------------------------------------------------------------
# one GRPO step with use_vllm=True (colocate) against the stand-in engine
# ---------------------------------------------------------------------------------------------


class StandInLLM:
    """``vllm.LLM`` as TRL's colocate mode uses it: ``generate``, ``reset_prefix_cache``, weight loading."""

    def __init__(self, processor, completion: list[int], **kwargs):
        self.processor, self.completion, self.kwargs = processor, completion, kwargs
        self.requests: list[dict] = []
        self.expanded: list[list[int]] = []  # each request's ids after one expansion, as vLLM would
        self.weights: list[str] = []
        model = SimpleNamespace(load_weights=lambda pairs: self.weights.extend(name for name, _ in pairs))
        runner = SimpleNamespace(model_runner=SimpleNamespace(model=model))
        self.llm_engine = SimpleNamespace(model_executor=SimpleNamespace(driver_worker=runner))

    def reset_prefix_cache(self):
        pass

    def _expand_once(self, ids: list[int], images: list) -> list[int]:
        image_id = self.processor.image_token_id
        grids = self.processor.image_processor(images=images, return_tensors="pt")["image_grid_thw"]
        sizes = (grids.prod(-1) // self.processor.image_processor.merge_size**2).tolist()
        out = []
        for token in ids:  # image k's feature tokens replace the k-th placeholder; later ones stay
            out.extend([image_id] * sizes.pop(0) if token == image_id and sizes else [token])
        return out

    def generate(self, prompts, sampling_params=None, use_tqdm=True):
        outputs = []
        for request in prompts:
            self.requests.append(request)
            images = request.get("multi_modal_data", {}).get("image")
            images = images if isinstance(images, list) else [images]
            self.expanded.append(self._expand_once(list(request["prompt_token_ids"]), images))
            ids = self.completion[: sampling_params.max_tokens]
            logprobs = [{t: SimpleNamespace(logprob=-1.0, rank=1)} for t in ids]
            outputs.append(
                SimpleNamespace(
                    prompt_token_ids=request["prompt_token_ids"],
                    outputs=[SimpleNamespace(token_ids=ids, logprobs=logprobs)],
                )
            )
        return outputs


class KeepsBatch:
    """Keeps the generation batch TRL's loss trains on (before TRL shuffles its rows)."""

    def _generate_and_score_completions(self, inputs):
        self.batch = super()._generate_and_score_completions(inputs)
        return self.batch


class JudgeKeepsBatch(KeepsBatch, JudgeGRPOTrainer):
    pass


class StockKeepsBatch(KeepsBatch, GRPOTrainer):
    """TRL's own trainer, taking (and ignoring) the keywords ``make_trainer`` passes ours."""

    OURS = (
        "advantage_estimator",
        "estimator_kwargs",
        "curriculum",
        "dynamic_sampling",
        "dynamic_sampling_metric",
        "max_generation_batches",
        "ratio_preclip",
        "advantage_filter_sigma",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{k: v for k, v in kwargs.items() if k not in self.OURS})


@pytest.fixture
def stand_in_vllm(monkeypatch, processor):
    """TRL's colocate vLLM replaced by :class:`StandInLLM`; the engines made are listed."""
    tok = processor.tokenizer
    completion = tok("<think>x</think><answer>1</answer>", add_special_tokens=False)["input_ids"] + [
        tok.convert_tokens_to_ids("<|im_end|>")
    ]
    engines: list[StandInLLM] = []

    def make(**kwargs):
        engines.append(StandInLLM(processor, completion, **kwargs))
        return engines[-1]

    monkeypatch.setattr(vllm_generation, "is_vllm_available", lambda *a, **k: True)
    monkeypatch.setattr(vllm_generation, "LLM", make, raising=False)
    monkeypatch.setattr(vllm_generation, "SamplingParams", FakeSamplingParams, raising=False)
    monkeypatch.setattr(os, "environ", os.environ.copy())  # TRL sets RANK, WORLD_SIZE, MASTER_PORT for vLLM
    return engines


def one_vllm_step(small_lab, judge_dir, tmp_path, trainer_cls):
    """One GRPO step on 2 pairs × G = 4 with ``use_vllm`` (colocate); the trainer and how many tensors moved."""
    torch.set_num_threads(1)
    trainer = make_trainer(
        small_lab, judge_dir, tmp_path, n_pairs=2, trainer_cls=trainer_cls, use_vllm=True, vllm_mode="colocate"
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    moved = sum(not torch.equal(p, before[n]) for n, p in trainer.model.named_parameters())
    return trainer, trainer.train_dataset, moved


def image_runs(ids: list[int], image_id: int) -> list[int]:
    """Lengths of the runs of ``image_id`` in ``ids``."""
    runs, length = [], 0
    for t in [*ids, None]:
        if t == image_id:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return runs


def test_vllm_gets_one_placeholder_per_image_and_training_the_expanded_ids(
    stand_in_vllm, processor, small_lab, tiny_judge_dir, tmp_path
):
    trainer, dataset, moved = one_vllm_step(small_lab, tiny_judge_dir, tmp_path, JudgeKeepsBatch)
    (engine,) = stand_in_vllm
    image_id = processor.image_token_id
    assert engine.kwargs["model"] == str(tiny_judge_dir) and engine.weights  # TRL pushed the policy's weights
    assert len(engine.requests) == 8  # colocate: one request per row (2 prompts × G = 4)

    by_text = {next(c["text"] for c in row["prompt"][-1]["content"] if c["type"] == "text"): row for row in dataset}
    for request in engine.requests:
        sent = request["multi_modal_data"]["image"]
        sent = sent if isinstance(sent, list) else [sent]
        ids = request["prompt_token_ids"]
        assert image_runs(ids, image_id) == [1] * len(sent) >= [1]  # one placeholder per image …
        text = processor.tokenizer.decode(ids)
        assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == len(sent)
        (images,) = [row["images"] for question, row in by_text.items() if question in text]
        assert [a.tobytes() for a in sent] == [b.tobytes() for b in images]  # … and the images themselves

    # expanded once (as vLLM does), each request is exactly what the training forward was given
    batch = trainer.batch
    trained = [row[mask.bool()].tolist() for row, mask in zip(batch["prompt_ids"], batch["prompt_mask"])]
    assert engine.expanded == trained
    assert all(max(image_runs(ids, image_id)) > 1 for ids in trained)
    assert batch["pixel_values"].shape[0] == batch["image_grid_thw"].prod(-1).sum()
    assert moved > 0  # the step trained on the expanded ids with TRL's pixel values

    # server mode keeps the expanded ids: TRL pairs the server's image features with their runs
    calls = []
    trainer.vllm_mode = "server"
    trainer.vllm_generation = SimpleNamespace(
        sync_weights=lambda: None,
        generate=lambda prompts, images, num_generations, profiler: (
            calls.append(prompts) or (None, [[1]], [[[0.0]]], None)
        ),
    )
    trainer._last_loaded_step = trainer.state.global_step
    images = [dataset[0]["images"]]
    trainer._generate_single_turn([trained[0]], images, {}, 1)
    assert calls == [[trained[0]]]


def test_stock_trl_sends_vllm_the_expanded_ids(stand_in_vllm, processor, small_lab, tiny_judge_dir, tmp_path):
    """The control: TRL 1.16's own GRPOTrainer hands vLLM the processor-expanded ids (TRL issue 6294)."""
    trainer, _, _ = one_vllm_step(small_lab, tiny_judge_dir, tmp_path, StockKeepsBatch)
    (engine,) = stand_in_vllm
    image_id = processor.image_token_id
    batch = trainer.batch
    trained = [row[mask.bool()].tolist() for row, mask in zip(batch["prompt_ids"], batch["prompt_mask"])]
    sent = [list(r["prompt_token_ids"]) for r in engine.requests]
    assert sent == trained and all(max(image_runs(ids, image_id)) > 1 for ids in sent)
    assert all(len(e) > len(s) for e, s in zip(engine.expanded, sent))  # vLLM would expand them again
