"""The review page in a real browser: headless Chromium renders it, and Selenium (Debian's
chromium-driver) marks rows with clicks and keys, pages, filters, reloads, exports
``corrections.jsonl`` — which ``egt relabel`` then applies.

Under ``CI=true`` (``.ci/run`` installs chromium and chromium-driver) a missing browser, driver or
selenium fails this module instead of skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from egt.analysis.review import write_review_page
from egt.curation.relabel import relabel_pool
from egt.records import read_pairs
from synthetic_scores import synthetic_records


def find_chromium() -> Path | None:
    """The browser on PATH (Debian calls it chromium, others chromium-browser or google-chrome)."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return Path(found)
    return None


def have_selenium() -> bool:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return True


CHROMIUM, DRIVER, SELENIUM = find_chromium(), shutil.which("chromedriver"), have_selenium()
if os.environ.get("CI") == "true":  # CI installs them: a missing one is a failed setup, not a skip
    missing = [n for n, ok in (("chromium", CHROMIUM), ("chromedriver", DRIVER), ("selenium", SELENIUM)) if not ok]
    if missing:
        raise RuntimeError(f"CI=true but {', '.join(missing)} missing: .ci/run and requirements-dev.txt install them")
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
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)"
)
needs_driver = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None or not SELENIUM,
    reason="needs chromium, chromium-driver (apt-get install chromium-driver) and selenium (requirements-dev.txt)",
)


def review_records(pool) -> list[dict]:
    """Synthetic scores where the flipped half's rollouts go against the label: disagreement finds them."""
    records = synthetic_records(pool)
    for r in records:
        r["verdicts"] = [1 - r["preferred"]] * 2 if r["flipped"] else [r["preferred"]] * 2
    return records


@needs_chromium
def test_review_page_renders_in_headless_chromium(tmp_path, pool, small_lab):
    from PIL import Image

    page = write_review_page(
        tmp_path / "review.html",
        review_records(pool),
        {p.id: p for p in pool},
        small_lab,
        top=6,
        analysis={"suspicion": {"auroc_flipped": {"disagreement": 1.0}}},
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
    assert dom.count('<article class="item') == 6 and "Response 1" in dom
    assert "rl_pool-00016" in dom  # all flipped items are 2/2 against: ties by id
    assert "page 1 of 1 (6 items)" in dom  # the script ran: it wrote the pager
    assert "<b>not bold</b>" not in dom and "&lt;b&gt;not bold&lt;/b&gt;" in dom  # rollout text stays text
    with Image.open(shot) as im:
        assert im.size == (1200, 900)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, images, badges: far from a blank page


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, "--window-size=1300,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag.replace("--headless", "--headless=new"))
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


@needs_driver
def test_mark_rows_by_click_and_key_export_and_relabel(browser, tmp_path, pool, small_lab):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    page = write_review_page(
        tmp_path / "review.html", review_records(pool), {p.id: p for p in pool}, small_lab, top=32, page_size=10
    )
    browser.get(page.resolve().as_uri())
    text = lambda css: browser.find_element(By.CSS_SELECTOR, css).text  # noqa: E731

    def visible_ids() -> list[str]:
        return [
            el.get_attribute("data-id")
            for el in browser.find_elements(By.CSS_SELECTOR, "#suspects .item")
            if el.is_displayed()
        ]

    assert text("#pageinfo") == "page 1 of 4 (32 items)" and len(visible_ids()) == 10
    first, second, third = visible_ids()[:3]
    flipped = {r["id"] for r in review_records(pool) if r["flipped"]}
    assert {first, second, third} <= flipped  # disagreement ranks the flipped half first

    item = browser.find_element(By.CSS_SELECTOR, f'.item[data-id="{first}"]')
    item.find_element(By.CSS_SELECTOR, "button[data-a=flip]").click()  # a click marks and selects the row
    note = item.find_element(By.CSS_SELECTOR, ".act input")
    note.send_keys('wrong colour, "<b>" stays text')
    note.send_keys(Keys.TAB)  # change event: the note is stored
    body = browser.find_element(By.TAG_NAME, "body")
    note.send_keys(Keys.ESCAPE)
    body.send_keys("j")  # to the second row
    body.send_keys("d")  # drop it; moves to the third
    body.send_keys("k")  # keep the third
    assert [
        browser.find_element(By.CSS_SELECTOR, f'.item[data-id="{i}"]').get_attribute("data-action")
        for i in (first, second, third)
    ] == ["flip", "drop", "keep"]
    assert text("#count") == "3 reviewed"

    browser.find_element(By.ID, "next").click()
    assert text("#pageinfo") == "page 2 of 4 (32 items)" and first not in visible_ids()
    browser.refresh()  # marks live in localStorage
    assert browser.find_element(By.CSS_SELECTOR, f'.item[data-id="{second}"]').get_attribute("data-action") == "drop"
    Select(browser.find_element(By.ID, "status")).select_by_value("todo")
    assert text("#pageinfo") == "page 1 of 3 (29 items)"
    Select(browser.find_element(By.ID, "status")).select_by_value("")
    Select(browser.find_element(By.ID, "agree")).select_by_value("with")
    assert text("#pageinfo") == "page 1 of 2 (16 items)" and not set(visible_ids()) & flipped
    Select(browser.find_element(By.ID, "agree")).select_by_value("")
    browser.find_element(By.ID, "search").send_keys("00031")
    assert visible_ids() == ["rl_pool-00031"]

    browser.find_element(By.ID, "export").click()
    exported = browser.downloads / "corrections.jsonl"
    deadline = time.monotonic() + 30
    while not exported.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [(c["id"], c["action"]) for c in lines] == [(first, "flip"), (second, "drop"), (third, "keep")]
    assert lines[0]["note"] == 'wrong colour, "<b>" stays text' and lines[0]["time"].endswith("Z")
    by_id = {p.id: p for p in pool}
    assert [c["label"] for c in lines] == [by_id[i].preferred for i in (first, second, third)]

    s = relabel_pool(small_lab / "rl_pool.jsonl", exported, tmp_path / "fixed")
    assert (s["counts"]["flip"], s["counts"]["drop"], s["counts"]["keep"], s["counts"]["written"]) == (1, 1, 1, 31)
    fixed = {p.id: p for p in read_pairs(tmp_path / "fixed" / "relabelled.jsonl")}
    assert fixed[first].preferred == 1 - by_id[first].preferred
    assert fixed[first].meta["flipped"] is not by_id[first].meta["flipped"]  # the lab's truth follows the flip
    assert second not in fixed and fixed[first].meta["review"]["note"] == lines[0]["note"]
