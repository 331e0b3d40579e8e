"""The review page in headless Chromium: it loads, its rows are in the DOM, the screenshot is not blank."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from egt.analysis.review import write_review_page
from synthetic_scores import synthetic_records


def find_chromium() -> Path | None:
    """The browser on PATH (Debian calls it chromium, others chromium-browser or google-chrome)."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return Path(found)
    return None


CHROMIUM = find_chromium()
if CHROMIUM is None and os.environ.get("CI") == "true":  # CI installs it: a missing browser is a failed setup
    raise RuntimeError("CI=true but no Chromium on PATH: .ci/run should have installed it")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_review_page_renders_in_headless_chromium(tmp_path, pool, small_lab):
    from PIL import Image

    page = write_review_page(
        tmp_path / "review.html",
        synthetic_records(pool),
        {p.id: p for p in pool},
        small_lab,
        top=6,
        analysis={"spearman": {"answer": -1.0}, "auroc_flipped": {"answer": 1.0}},
    )
    profile = tmp_path / "profile"
    shot = tmp_path / "shot.png"
    common = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}"]
    try:
        subprocess.run(
            [*common, f"--screenshot={shot}", "--window-size=1200,900", page.resolve().as_uri()],
            check=True,
            capture_output=True,
            timeout=120,
        )
        dom = subprocess.run(
            [*common, "--dump-dom", page.resolve().as_uri()], check=True, capture_output=True, timeout=120, text=True
        ).stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert dom.count('<tr class="item"') == 6 and "rl_pool-00031" in dom and "Response 1" in dom
    with Image.open(shot) as im:
        assert im.size == (1200, 900)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, images, badges: far from a blank page
