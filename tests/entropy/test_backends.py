"""``egt score --backend vllm``: the adapter's contract, against an in-process stand-in engine.

vLLM is not installed here (it needs a GPU). The stand-in :class:`FakeLLM` has vLLM's offline
``generate(inputs, sampling_params, use_tqdm=False)`` shape: it records every request and
"generates" by running the tiny judge's own transformers generation on the request's prompt text
and images, sampled per row with the request's seed (:class:`RolloutSampler`). Checked: per-request
seeds are ``rollout_seed(seed, id, k)``, the prompts are the judge's chat-templated prompts, images
travel as ``multi_modal_data``, and the scores file has the transformers backend's structure with
teacher-forced entropies equal to a direct ``rollout_entropies`` call on the same ids.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import LogitsProcessorList

from egt.data.presentation import presented_swapped, rollout_seed
from egt.entropy.backends import VllmBackend, make_backend
from egt.entropy.sampling import RolloutSampler
from egt.entropy.score_store import read_scores
from egt.errors import EgtError
from egt.judge.base import JudgeRequest
from egt.judge.generative import GenerationSettings, chat_prompts, generation_kwargs
from egt.models.args import ModelArgs
from egt.pipelines.scoring.config import ScoringConfig
from egt.pipelines.scoring.run import score_pool
from egt.records import open_images, read_pairs

REPO = Path(__file__).resolve().parents[2]
N_ITEMS = 3


class FakeSamplingParams:
    """Records vLLM ``SamplingParams`` keyword arguments."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)
        self.kwargs = kwargs


class FakeLLM:
    """A vLLM ``LLM`` stand-in: seeded transformers generation of each request on the tiny judge."""

    def __init__(self, loaded):
        self.loaded = loaded
        self.calls: list[tuple[list[dict], list[FakeSamplingParams]]] = []

    @torch.no_grad()
    def generate(self, inputs, sampling_params=None, use_tqdm=True):
        assert use_tqdm is False and len(inputs) == len(sampling_params)
        self.calls.append((inputs, sampling_params))
        kwargs = generation_kwargs(
            self.loaded, GenerationSettings(max_new_tokens=sampling_params[0].max_tokens, temperature=0.0)
        )
        outputs = []
        for item, params in zip(inputs, sampling_params):
            assert params.n == 1
            images = item.get("multi_modal_data", {}).get("image")
            enc = self.loaded.processor(text=[item["prompt"]], images=images or None, return_tensors="pt")
            sampler = RolloutSampler([params.seed], params.temperature, record_entropy=False)
            out = self.loaded.model.generate(**enc, **kwargs, logits_processor=LogitsProcessorList([sampler]))
            ids = out[0, enc["input_ids"].shape[1] :].tolist()
            stop = next((i for i, t in enumerate(ids) if t in params.stop_token_ids), None)
            ids = ids if stop is None else ids[: stop + 1]  # vLLM keeps the stop token, drops what follows
            outputs.append(SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids)]))
        return outputs


def cfg(**overrides) -> ScoringConfig:
    base = dict(rollouts=2, max_new_tokens=10, batch_size=2, prompt_style="compact", seed=5, temperature=0.9)
    return ScoringConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def vllm_run(loaded, tiny_judge_dir, small_lab, tmp_path_factory):
    """One scores file from the vLLM path (stand-in engine) and one from the transformers backend."""
    out = tmp_path_factory.mktemp("backends")
    model = ModelArgs(model=str(tiny_judge_dir), device="cpu", dtype="float32")
    llm = FakeLLM(loaded)
    backend = VllmBackend(loaded, llm, sampling_params=FakeSamplingParams)
    data = small_lab / "rl_pool.jsonl"
    score_pool(
        model,
        data,
        out / "vllm.jsonl",
        cfg(backend="vllm", keep_token_ids=True),
        limit=N_ITEMS,
        loaded=loaded,
        backend=backend,
    )
    score_pool(model, data, out / "hf.jsonl", cfg(keep_token_ids=True), limit=N_ITEMS, loaded=loaded)
    return llm, out


def test_requests_carry_rollout_seeds_chat_prompts_and_images(vllm_run, loaded, small_lab):
    llm, _ = vllm_run
    pairs = read_pairs(small_lab / "rl_pool.jsonl")[:N_ITEMS]
    inputs = [x for call, _ in llm.calls for x in call]
    params = [p for _, call in llm.calls for p in call]
    assert len(llm.calls) == 2  # batches of 2 items: [0, 1], [2]
    c = cfg()
    assert [p.seed for p in params] == [rollout_seed(c.seed, p.id, k) for p in pairs for k in range(c.rollouts)]
    assert all(p.temperature == c.temperature and p.max_tokens == c.max_new_tokens and p.n == 1 for p in params)
    assert all("top_k" not in p.kwargs and "top_p" not in p.kwargs for p in params)  # untruncated softmax(z/τ)
    requests = [
        JudgeRequest(p, presented_swapped(c.seed, p.id, k, c.order), open_images(p, small_lab))
        for p in pairs
        for k in range(c.rollouts)
    ]
    assert [x["prompt"] for x in inputs] == chat_prompts(loaded, requests, "compact")
    assert "<|image_pad|>" in inputs[0]["prompt"]
    for x, r in zip(inputs, requests):
        sent = x["multi_modal_data"]["image"]
        assert isinstance(sent, list) and len(sent) == len(r.images) >= 1
        # text with one placeholder per image, which vLLM expands once (never processor-expanded ids)
        assert set(x) == {"prompt", "multi_modal_data"}
        assert x["prompt"].count("<|image_pad|>") == len(sent)
        assert x["prompt"].count("<|vision_start|><|image_pad|><|vision_end|>") == len(sent)
        assert all(a.tobytes() == b.tobytes() for a, b in zip(sent, r.images))


def test_scores_file_matches_transformers_structure_with_teacher_forced_entropies(vllm_run, loaded, small_lab):
    from egt.entropy.sampling import PieceDecoder
    from egt.entropy.signals import answer_token_entropy, reasoning_sentence_entropy
    from egt.entropy.teacher_forced import rollout_entropies

    _, out = vllm_run
    vmeta, vrecs = read_scores(out / "vllm.jsonl")
    hmeta, hrecs = read_scores(out / "hf.jsonl")
    assert vmeta["header"]["scoring"]["backend"] == "vllm"
    assert vmeta["header"]["scoring"]["entropy_source"] == "teacher_forced"
    assert "backend" not in hmeta["header"]["scoring"]  # the default stays out of the header (old files resume)
    assert set(vmeta["header"]["scoring"]) == set(hmeta["header"]["scoring"]) | {"backend"}
    assert set(vmeta["summary"]) == set(hmeta["summary"])
    assert [r["id"] for r in vrecs] == [r["id"] for r in hrecs]
    for v, h in zip(vrecs, hrecs):
        assert set(v) == set(h)
        assert v["swapped"] == h["swapped"] and len(v["verdicts"]) == 2

    # the file's entropies are the teacher-forced pass over exactly the ids the engine returned
    c = cfg()
    pairs = read_pairs(small_lab / "rl_pool.jsonl")[:N_ITEMS]
    requests = [
        JudgeRequest(p, presented_swapped(c.seed, p.id, k, c.order), open_images(p, small_lab))
        for p in pairs
        for k in range(c.rollouts)
    ]
    ids = [row for r in vrecs for row in r["token_ids"]]
    direct = rollout_entropies(loaded, requests, ids, temperature=c.temperature, style="compact")  # [R, T]
    decoder = PieceDecoder(loaded.tokenizer)
    sentence = [reasoning_sentence_entropy(direct[i, : len(row)], decoder(row)) for i, row in enumerate(ids)]
    answer = [answer_token_entropy(direct[i, : len(row)], decoder(row)) for i, row in enumerate(ids)]
    got_sentence = [x for r in vrecs for x in r["sentence_entropies"]]
    got_answer = [x for r in vrecs for x in r["answer_entropies"]]
    for g, d in zip(got_sentence, sentence):
        assert (g is None and d is None) or abs(g - d) <= 1e-6
    verdict_ok = [v is not None for r in vrecs for v in r["verdicts"]]
    for g, d, ok in zip(got_answer, answer, verdict_ok):
        if not ok:
            assert g is None  # a format failure has no answer-token entropy
        else:
            assert (g is None and d is None) or abs(g - d) <= 1e-6


def test_fixed_ids_stand_in_and_padding(loaded, small_lab):
    """An engine returning fixed ids: rows are padded, lengths are the returned lengths."""
    pairs = read_pairs(small_lab / "rl_pool.jsonl")[:1]
    requests = [JudgeRequest(pairs[0], False, open_images(pairs[0], small_lab))] * 2

    class Fixed:
        def generate(self, inputs, sampling_params=None, use_tqdm=True):
            return [SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids)]) for ids in ([5, 6, 7], [8])]

    gen = VllmBackend(loaded, Fixed(), sampling_params=FakeSamplingParams).generate(
        requests, [1, 2], temperature=1.0, max_new_tokens=8, style="compact"
    )
    assert gen.lengths == [3, 1] and gen.entropies is None
    assert gen.ids[0].tolist() == [5, 6, 7] and gen.ids[1, 0].item() == 8


@pytest.mark.slow
def test_without_vllm_the_backend_fails_with_one_clear_line(loaded, tiny_judge_dir, small_lab, tmp_path):
    pytest.importorskip("transformers")
    try:
        import vllm  # noqa: F401

        pytest.skip("vLLM is installed")
    except ImportError:
        pass
    with pytest.raises(EgtError, match=r"pip install 'egt\[vllm\]'"):
        make_backend("vllm", loaded, ModelArgs(model=str(tiny_judge_dir)))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "egt.cli",
            "score",
            "--model",
            str(tiny_judge_dir),
            "--data",
            str(small_lab / "rl_pool.jsonl"),
            "--output_dir",
            str(tmp_path / "s"),
            "--backend",
            "vllm",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "pip install 'egt[vllm]'" in lines[0] and "GPU" in lines[0]
    assert not (tmp_path / "s").exists()


def test_vllm_recipe_parses_into_the_score_command_config():
    from egt.commands.score import ScoreIO
    from egt.config import parse_config
    from egt.entropy.backends import VllmArgs

    recipe = REPO / "configs" / "score" / "qwen2_5_vl_7b_vllm.yaml"
    io, c, model, vargs = parse_config(
        [ScoreIO, ScoringConfig, ModelArgs, VllmArgs], ["--config", str(recipe)], "egt score"
    )
    c.check()
    assert (c.backend, c.rollouts, c.max_new_tokens, c.prompt_style) == ("vllm", 4, 1024, "r1_reward")
    assert (model.model, model.dtype, model.device) == ("Qwen/Qwen2.5-VL-7B-Instruct", "bfloat16", "cuda")
    assert io.data and io.output_dir == "runs/score/qwen2_5_vl_7b"
    assert 0 < vargs.vllm_gpu_memory_utilization < 1
