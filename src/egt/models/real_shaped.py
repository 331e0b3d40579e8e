"""A checkpoint folder shaped like ``Qwen/Qwen2.5-VL-7B-Instruct``, built offline.

The tiny lab judge (:mod:`egt.models.tiny`) is a Qwen2.5-VL too, but shaped for speed: a 1,024-token
vocabulary, ``<think>`` / ``<answer>`` as single tokens, no system prompt, 56×56 images, float32
weights and no generation config. A user's checkpoint differs in each of those ways, and each one
has broken or silently spoiled a path that only ever ran on the tiny judge. This module writes a
folder that differs from the released 7B only in its sizes (shallow and narrow, random weights):

- ``config.json`` in the released (transformers 4.49, flat) layout: ``rope_scaling`` with
  ``mrope_section``, ``torch_dtype: bfloat16``, untied embeddings, vocab 151,936, the real special
  token ids (151643 ``<|endoftext|>`` … 151656 ``<|video_pad|>``).
- weights in bfloat16, in two safetensors shards with an index, under the released key names
  (``model.layers.*``, ``visual.*``, ``lm_head``) that transformers 5 renames on load.
- a byte-level BPE tokenizer (Qwen2's pre-tokenizer regex and NFC normaliser) with 151,643 regular
  entries and the 22 added tokens at their real ids; ``<think>``, ``</think>``, ``<answer>`` and
  ``</answer>`` are *not* single tokens. Ids from 151,665 to 151,935 exist in the model but not in
  the tokenizer, as in the release.
- ``preprocessor_config.json``: the released image processor settings (``Qwen2VLImageProcessor``,
  min 3,136 / max 12,845,056 pixels), which on load also build a video processor (torchvision).
- the chat template TRL ships for Qwen2.5-VL (with the default system prompt) in
  ``chat_template.json`` and ``tokenizer_config.json``.
- ``generation_config.json`` as released: ``do_sample``, ``temperature 0.1``, ``top_p 0.001``,
  ``top_k 1``, ``repetition_penalty 1.05``, two EOS ids.

:data:`QWEN2_5_VL_7B` holds the real sizes (for ``bench/gpu_check.py``); :data:`NARROW` the test
fixture's. Nothing is downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from egt.data.atomic import atomic_path

__all__ = ["NARROW", "QWEN2_5_VL_7B", "RealShapedSizes", "build_real_shaped_checkpoint", "released_config"]

VOCAB_SIZE = 151_936
REGULAR_TOKENS = 151_643  # ids below this are BPE entries; the added tokens start here
# The added tokens of Qwen2.5-VL's tokenizer, in id order from 151643; True = special.
ADDED_TOKENS: list[tuple[str, bool]] = [
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
]
TOKEN_IDS = {text: REGULAR_TOKENS + i for i, (text, _) in enumerate(ADDED_TOKENS)}
# Qwen2's pre-tokenizer split (tokenizer.json of the release).
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
IMAGE_PROCESSOR = {
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2_5_VLProcessor",
}
GENERATION_CONFIG = {
    "bos_token_id": 151643,
    "pad_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "repetition_penalty": 1.05,
    "temperature": 0.1,
    "top_p": 0.001,
    "top_k": 1,
    "transformers_version": "4.49.0",
}


@dataclass(frozen=True)
class RealShapedSizes:
    """Sizes of the decoder and vision tower; everything else is the release's."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    mrope_section: tuple[int, int, int]  # sums to head_dim / 2
    vision_depth: int
    vision_hidden_size: int
    vision_intermediate_size: int
    vision_heads: int
    fullatt_block_indexes: tuple[int, ...]
    max_position_embeddings: int = 128000


QWEN2_5_VL_7B = RealShapedSizes(
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    mrope_section=(16, 24, 24),
    vision_depth=32,
    vision_hidden_size=1280,
    vision_intermediate_size=3420,
    vision_heads=16,
    fullatt_block_indexes=(7, 15, 23, 31),
)
NARROW = RealShapedSizes(
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    mrope_section=(8, 12, 12),
    vision_depth=2,
    vision_hidden_size=64,
    vision_intermediate_size=128,
    vision_heads=2,
    fullatt_block_indexes=(1,),
)


def released_config(sizes: RealShapedSizes) -> dict[str, Any]:
    """``config.json`` of Qwen2.5-VL-7B-Instruct as released (transformers 4.49 layout), at ``sizes``."""
    head_dim = sizes.hidden_size // sizes.num_attention_heads
    if sum(sizes.mrope_section) * 2 != head_dim:
        raise ValueError(f"mrope_section {sizes.mrope_section} must sum to head_dim/2 = {head_dim // 2}")
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "vision_start_token_id": TOKEN_IDS["<|vision_start|>"],
        "vision_end_token_id": TOKEN_IDS["<|vision_end|>"],
        "vision_token_id": TOKEN_IDS["<|vision_pad|>"],
        "image_token_id": TOKEN_IDS["<|image_pad|>"],
        "video_token_id": TOKEN_IDS["<|video_pad|>"],
        "hidden_act": "silu",
        "hidden_size": sizes.hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": sizes.intermediate_size,
        "max_position_embeddings": sizes.max_position_embeddings,
        "max_window_layers": sizes.num_hidden_layers,
        "model_type": "qwen2_5_vl",
        "num_attention_heads": sizes.num_attention_heads,
        "num_hidden_layers": sizes.num_hidden_layers,
        "num_key_value_heads": sizes.num_key_value_heads,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.41.2",
        "use_cache": True,
        "use_sliding_window": False,
        "vision_config": {
            "depth": sizes.vision_depth,
            "hidden_act": "silu",
            "hidden_size": sizes.vision_hidden_size,
            "intermediate_size": sizes.vision_intermediate_size,
            "num_heads": sizes.vision_heads,
            "in_chans": 3,
            "out_hidden_size": sizes.hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "window_size": 112,
            "fullatt_block_indexes": list(sizes.fullatt_block_indexes),
            "tokens_per_second": 2,
            "temporal_patch_size": 2,
        },
        "rope_scaling": {"type": "mrope", "mrope_section": list(sizes.mrope_section)},
        "vocab_size": VOCAB_SIZE,
    }


def build_model(sizes: RealShapedSizes = NARROW, *, seed: int = 0, dtype: Any = None, device: Any = None):
    """A randomly initialised ``Qwen2_5_VLForConditionalGeneration`` with the release's config at ``sizes``."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig.from_dict(released_config(sizes))
    torch.manual_seed(seed)
    with torch.device(device or "cpu"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    return model.to(dtype or torch.bfloat16)


def build_tokenizer(corpus: Iterable[str], merges_from: int = 2000):
    """Qwen2's byte-level BPE layout with 151,643 regular entries: ``merges_from`` learnt from
    ``corpus``, the rest unreachable fillers (as the release's rare merges are unreachable here)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    learner = Tokenizer(models.BPE())
    learner.normalizer = normalizers.NFC()
    learner.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    learner.train_from_iterator(
        corpus,
        trainer=trainers.BpeTrainer(
            vocab_size=merges_from, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    learnt = json.loads(learner.to_str())["model"]
    vocab: dict[str, int] = dict(learnt["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learnt["merges"]]
    for i in range(len(vocab), REGULAR_TOKENS):
        vocab[f"ĠĠ<unused{i}>"] = i  # never produced: no merge builds it
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.normalizer, tok.pre_tokenizer = learner.normalizer, learner.pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    tok.add_tokens([AddedToken(text, special=special, normalized=False) for text, special in ADDED_TOKENS])
    for text, token_id in TOKEN_IDS.items():
        if tok.token_to_id(text) != token_id:  # pragma: no cover - the construction above guarantees it
            raise RuntimeError(f"{text} got id {tok.token_to_id(text)}, not {token_id}")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        errors="replace",
        model_max_length=131072,
        padding_side="right",
        split_special_tokens=False,
        clean_up_tokenization_spaces=False,
        additional_special_tokens=[t for t, special in ADDED_TOKENS[1:] if special and t != "<|im_end|>"],
    )


def _released_key(name: str) -> str:
    """transformers 5's parameter name → the release's (``model.language_model.x`` → ``model.x``)."""
    if name.startswith("model.language_model."):
        return "model." + name[len("model.language_model.") :]
    if name.startswith("model.visual."):
        return name[len("model.") :]
    return name


def save_released_weights(model, folder: Path, shards: int = 2) -> None:
    """The model's bf16 weights as the release stores them: key names, shards and index."""
    from safetensors.torch import save_file

    state = {_released_key(k): v.detach().contiguous() for k, v in model.state_dict().items()}
    names = sorted(state)
    per = -(-len(names) // shards)
    index: dict[str, str] = {}
    total = 0
    for s in range(shards):
        part = names[s * per : (s + 1) * per]
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        save_file({k: state[k] for k in part}, str(folder / file), metadata={"format": "pt"})
        index.update(dict.fromkeys(part, file))
        total += sum(state[k].numel() * state[k].element_size() for k in part)
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": index}, indent=2)
    )


def build_real_shaped_checkpoint(
    out_dir: str | Path, corpus: Iterable[str], sizes: RealShapedSizes = NARROW, seed: int = 0
) -> Path:
    """Write a Qwen2.5-VL-7B-Instruct-shaped checkpoint folder at ``sizes`` (module docstring)."""
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    tokenizer = build_tokenizer(corpus)
    model = build_model(sizes, seed=seed)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        tokenizer.save_pretrained(tmp)
        config_path = tmp / "tokenizer_config.json"
        tok_config = json.loads(config_path.read_text())
        tok_config.update(chat_template=qwen2_5_vl_chat_template, tokenizer_class="Qwen2Tokenizer", bos_token=None)
        config_path.write_text(json.dumps(tok_config, indent=2))
        (tmp / "chat_template.json").write_text(json.dumps({"chat_template": qwen2_5_vl_chat_template}, indent=2))
        (tmp / "preprocessor_config.json").write_text(json.dumps(IMAGE_PROCESSOR, indent=2))
        (tmp / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG, indent=2))
        (tmp / "config.json").write_text(json.dumps(released_config(sizes), indent=2))
        save_released_weights(model, tmp)
    return Path(out_dir)


def describe(sizes: RealShapedSizes) -> dict[str, Any]:
    """``sizes`` as a plain dict (for reports)."""
    return asdict(sizes)
