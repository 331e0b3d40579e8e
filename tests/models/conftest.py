"""A checkpoint folder shaped like Qwen2.5-VL-7B-Instruct, and data with images of any size."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_shaped_dir(tmp_path_factory, small_lab) -> Path:
    """The release's vocab, special ids, tokenizer layout, chat template, image processor settings,
    bf16 weights under the released key names and generation config; shallow and narrow sizes."""
    from egt.models.real_shaped import build_real_shaped_checkpoint
    from egt.records import read_pairs
    from egt.train.sft import lab_corpus

    out = tmp_path_factory.mktemp("real_shaped") / "Qwen2.5-VL-7B-Instruct"
    return build_real_shaped_checkpoint(out, lab_corpus(read_pairs(small_lab / "sft.jsonl"), "r1_reward"))


@pytest.fixture(scope="session")
def real_data(tmp_path_factory, small_lab) -> Path:
    """Lab pairs with traces whose first two images are a 1600×1200 photo-sized and a 900×300 one
    (``sft.jsonl``, 8 pairs), and 8 pairs of 56×56 images (``rl.jsonl``)."""
    import numpy as np
    from PIL import Image

    out = tmp_path_factory.mktemp("real_data")
    shutil.copytree(small_lab / "images", out / "images")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (1200, 1600, 3), dtype=np.uint8)).save(out / "images" / "photo.png")
    Image.fromarray(rng.integers(0, 255, (300, 900, 3), dtype=np.uint8)).save(out / "images" / "wide.png")
    rows = [json.loads(line) for line in (small_lab / "sft.jsonl").read_text().splitlines()[:8]]
    rows[0]["images"], rows[1]["images"] = ["images/photo.png"], ["images/wide.png"]
    (out / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rl = (small_lab / "rl_pool.jsonl").read_text().splitlines()[:8]
    (out / "rl.jsonl").write_text("\n".join(rl) + "\n")
    return out
