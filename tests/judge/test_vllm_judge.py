"""``egt eval --backend vllm``: a generative judge generating through the vLLM adapter (stand-in engine).

vLLM is not installed here; :class:`FakeLLM` (tests/entropy/test_backends.py) stands in for
``vllm.LLM``: it runs the tiny judge's own transformers generation on each request's prompt text and
images. Greedy, the judgements must equal the transformers path's; each judgement is one request,
seeded by (seed, pair id, order).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from egt.data.presentation import rollout_seed
from egt.entropy.backends import VllmBackend
from egt.errors import EgtError
from egt.judge.args import JudgeArgs
from egt.judge.base import JudgeRequest
from egt.judge.generative import GenerationSettings, generation_kwargs
from egt.pipelines.judges import make_generative_judge, make_judge
from egt.records import open_images, read_pairs
from entropy.test_backends import FakeLLM, FakeSamplingParams

N_ITEMS = 2


class GreedyFakeLLM(FakeLLM):
    """The stand-in with vLLM's temperature-0 rule: greedy decoding (sampled requests as FakeLLM)."""

    @torch.no_grad()
    def generate(self, inputs, sampling_params=None, use_tqdm=True):
        if any(p.temperature > 0 for p in sampling_params):
            return super().generate(inputs, sampling_params=sampling_params, use_tqdm=use_tqdm)
        assert use_tqdm is False and len(inputs) == len(sampling_params)
        self.calls.append((inputs, sampling_params))
        outputs = []
        for item, params in zip(inputs, sampling_params):
            kwargs = generation_kwargs(
                self.loaded, GenerationSettings(max_new_tokens=params.max_tokens, temperature=0.0)
            )
            images = item.get("multi_modal_data", {}).get("image")
            enc = self.loaded.processor(text=[item["prompt"]], images=images or None, return_tensors="pt")
            ids = self.loaded.model.generate(**enc, **kwargs)[0, enc["input_ids"].shape[1] :].tolist()
            stop = next((i for i, t in enumerate(ids) if t in params.stop_token_ids), None)
            ids = ids if stop is None else ids[: stop + 1]  # vLLM keeps the stop token, drops what follows
            outputs.append(SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids)]))
        return outputs


def test_greedy_vllm_judgements_equal_the_transformers_path(tiny_judge_dir, small_lab):
    args = JudgeArgs(
        model=str(tiny_judge_dir),
        device="cpu",
        dtype="float32",
        batch_size=3,
        max_new_tokens=16,
        seed=7,
        backend="vllm",
    )
    hf = make_generative_judge(JudgeArgs(**{**vars(args), "backend": "transformers"}))
    llm = GreedyFakeLLM(hf.loaded)
    vj = make_generative_judge(args, backend=VllmBackend(hf.loaded, llm, sampling_params=FakeSamplingParams))
    assert hf.backend is None and vj.style == hf.style and vj.settings == hf.settings

    pairs = read_pairs(small_lab / "test.jsonl")[:N_ITEMS]
    requests = [JudgeRequest(p, s, open_images(p, small_lab)) for p in pairs for s in (False, True)]
    got, want = vj.judge(requests), hf.judge(requests)
    assert [(j.choice, j.status) for j in got] == [(j.choice, j.status) for j in want]
    assert [j.text for j in got] == [j.text for j in want]
    assert all(j.text for j in want)  # the untrained tiny judge writes text (its verdicts rarely parse)

    params = [p for _, call in llm.calls for p in call]
    assert [len(call) for call, _ in llm.calls] == [3, 1]  # one request per judgement, in --batch_size batches
    assert [p.seed for p in params] == [rollout_seed(7, r.pair.id, int(r.swapped)) for r in requests]
    assert all(p.temperature == 0.0 and p.max_tokens == 16 and p.n == 1 for p in params)


def test_vllm_backend_is_for_generative_judges_only():
    with pytest.raises(EgtError, match="only a generative judge"):
        make_judge(JudgeArgs(model="random", backend="vllm"))
    with pytest.raises(EgtError, match="unknown backend"):
        make_judge(JudgeArgs(model="random", backend="onnx"))


@pytest.mark.slow
def test_eval_with_vllm_backend_fails_with_one_clear_line_without_vllm(tiny_judge_dir, small_lab, tmp_path):
    import subprocess
    import sys

    try:
        import vllm  # noqa: F401

        pytest.skip("vLLM is installed")
    except ImportError:
        pass
    base = [
        sys.executable,
        "-m",
        "egt.cli",
        "eval",
        "--model",
        str(tiny_judge_dir),
        "--data",
        str(small_lab / "test.jsonl"),
        "--output_dir",
        str(tmp_path / "ev"),
        "--device",
        "cpu",
        "--backend",
        "vllm",
    ]
    for extra, words in (([], "pip install 'egt[vllm]'"), (["--votes", "3"], "transformers backend only")):
        proc = subprocess.run(base + extra, capture_output=True, text=True, timeout=120)
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and words in lines[0], proc.stderr
    assert not (tmp_path / "ev").exists()
