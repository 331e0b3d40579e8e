"""RewardModel: padding invariance, the fast Qwen path, save / reload, head mismatch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from egt.errors import EgtError
from egt.records import open_images
from egt.rm.checkpoint import REWARD_META_FILE
from egt.rm.collate import ScoreItem, encode_items, render_text
from egt.rm.head import HeadConfig
from egt.rm.model import RewardModel
from egt.rm.scoring import score_items


def _items(lab, pairs, with_images=True):
    items = []
    for i, p in enumerate(pairs):
        images = open_images(p, lab) if with_images and i % 2 == 0 else []  # mixed image / text-only
        items.append(ScoreItem(p.question, p.responses[i % 2] + " Indeed." * (i % 3), images))
    return items


@pytest.mark.parametrize("backbone", ["vl_backbone", "text_backbone"])
def test_padding_side_does_not_change_rewards(request, lab, lab_pairs, backbone):
    path = request.getfixturevalue(backbone)
    model, processor = RewardModel.from_backbone(path, HeadConfig("mlp"), device="cpu", for_training=False)
    items = _items(lab, lab_pairs[:6], with_images=model.is_vision)
    alone = torch.tensor(score_items(model, processor, items, batch_size=1))  # no padding at all
    with torch.no_grad():
        for side in ("left", "right"):
            enc = encode_items(processor, items, reads_images=model.is_vision, padding_side=side)
            assert (enc["attention_mask"] == 0).any()  # the batch really is padded
            torch.testing.assert_close(model(**enc), alone, atol=1e-5, rtol=1e-5)


def test_fast_qwen_path_matches_the_stock_transformers_path(lab, lab_pairs, vl_backbone):
    """Distinct images encoded once and vectorised 3-D positions give the rewards and gradients of
    transformers' own path (the processor on every image occurrence, ``get_rope_index``)."""
    model, processor = RewardModel.from_backbone(vl_backbone, HeadConfig("mlp"), device="cpu", seed=0)
    items = [
        ScoreItem(p.question, r, images) for p in lab_pairs[:4] for images in [open_images(p, lab)] for r in p.responses
    ]
    items.append(ScoreItem("A text-only question?", "A text-only answer."))
    enc = encode_items(processor, items, reads_images=True)
    assert enc["image_sources"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    stock = processor(
        text=[render_text(processor, it, True) for it in items],
        images=[im for it in items for im in it.images],
        padding=True,
        return_tensors="pt",
    )
    assert "mm_token_type_ids" in stock and 2 * enc["pixel_values"].shape[0] == stock["pixel_values"].shape[0]
    calls = []
    hook = model.base().visual.register_forward_hook(lambda m, a, out: calls.append(a[0].shape[0]))
    fast = model(**enc)
    hook.remove()
    assert calls == [enc["pixel_values"].shape[0]]  # one vision pass over the 4 distinct images
    hidden = model.base()(**stock, use_cache=False).last_hidden_state  # transformers computes the positions
    reference = model.rewards_from_hidden(hidden, stock["attention_mask"])
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=1e-5)
    grads = []
    for rewards in (fast, reference):
        model.zero_grad()
        rewards.sum().backward()
        grads.append(model.base().visual.patch_embed.proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_save_and_reload_in_another_process_gives_identical_rewards(tmp_path, lab, lab_pairs, vl_backbone):
    model, processor = RewardModel.from_backbone(
        vl_backbone, HeadConfig("mlp", hidden_size=48), device="cpu", seed=3, for_training=False
    )
    out = model.save_pretrained(tmp_path / "rm", processor)
    assert (out / REWARD_META_FILE).is_file() and (out / "reward_head.safetensors").is_file()
    assert not list(out.glob("*.bin")) and not list(out.glob("*.pt"))  # nothing pickled
    items = _items(lab, lab_pairs[:4])
    here = score_items(model, processor, items, batch_size=4)
    script = f"""
import json
from egt.records import read_pairs, open_images
from egt.rm.collate import ScoreItem
from egt.rm.model import RewardModel
from egt.rm.scoring import score_items
pairs = read_pairs({str(lab / "sft.jsonl")!r})[:4]
items = [ScoreItem(p.question, p.responses[i % 2] + " Indeed." * (i % 3),
                   open_images(p, {str(lab)!r}) if i % 2 == 0 else [])
         for i, p in enumerate(pairs)]
model, processor = RewardModel.from_pretrained({str(out)!r}, device="cpu")
print(json.dumps(score_items(model, processor, items, batch_size=4)))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    there = json.loads(done.stdout.strip().splitlines()[-1])
    assert there == here


def test_head_mismatch_is_refused(tmp_path, vl_backbone):
    model, processor = RewardModel.from_backbone(vl_backbone, HeadConfig("mlp"), device="cpu")
    out = model.save_pretrained(tmp_path / "rm", processor)
    with pytest.raises(EgtError, match="refusing to load"):
        RewardModel.from_pretrained(out, HeadConfig("linear"), device="cpu")
    with pytest.raises(EgtError, match="refusing to load"):
        RewardModel.from_pretrained(out, HeadConfig("mlp", hidden_size=7), device="cpu")
    RewardModel.from_pretrained(out, HeadConfig("mlp"), device="cpu")  # the same head loads
    # a config file that lies about the weights is refused too
    meta = json.loads((out / REWARD_META_FILE).read_text())
    meta["head"]["type"] = "linear"
    (out / REWARD_META_FILE).write_text(json.dumps(meta))
    with pytest.raises(EgtError, match="do not match"):
        RewardModel.from_pretrained(out, device="cpu")


def test_not_a_reward_model(tmp_path, vl_backbone):
    with pytest.raises(EgtError, match="not a reward model checkpoint"):
        RewardModel.from_pretrained(vl_backbone, device="cpu")
