"""The review page: one self-contained offline HTML file to review suspected labels (issue 25; EGT §4.2).

``egt analyze`` writes ``review.html``. The items are ranked by one suspicion signal
(:mod:`egt.analysis.suspicion`; ``--review_by``, default ``disagreement``). Each item shows, in
escaped text:

* why it is suspected, in words ("4/4 rollouts prefer Response 2 against the label; peak entropy in
  the top 2% of the pool"), and every signal as a percentile of the pool (raw nats on hover);
* its image(s), embedded (PNG, or JPEG above 256 px; click to enlarge), the question, both responses
  (the stored label marked), every rollout's verdict and reasoning, category, source, meta and the
  file and line it came from; on the lab, the ground truth (badges only where the lab has it);
* actions keep / flip / drop / unsure and a note, by button or key (k f d u, x to clear; j / ↓ and
  p / ↑ to move; / to search), kept in the browser's ``localStorage`` under this page's key and
  exported as ``corrections.jsonl`` — one ``{"id", "action", "note", "time", "label"}`` line per
  reviewed item (``label``: the stored label the reviewer saw) — which ``egt relabel`` applies.

The toolbar sorts by any signal, filters by category, agreement with the label, format failures
and review status, pages 50 at a time and searches ids. Items without any parsable verdict (every
rollout failed the judge format) are in a section of their own, so they never crowd out label
suspects; a banner says when the judge answers by position (≥ 90% of its verdicts on one side),
when the ranking signal is missing for most items or the format rate is
low. Nothing is fetched from the network: styles, script and images are inline.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path

from egt.analysis.stats import ENTROPY_FIELDS, ranks
from egt.analysis.suspicion import (
    SIGNALS,
    label_votes,
    missing_counts,
    position_bias,
    position_warning,
    signal_warning,
    suspicion_scores,
)
from egt.data.atomic import atomic_write_text

PAGE_SIZE = 50
LOW_FORMAT_RATE = 0.5
ACTIONS = ("keep", "flip", "drop", "unsure")

ASSETS = Path(__file__).parent
"""``review_page.css`` and ``review_page.js``: inlined into every page (nothing is fetched)."""


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def image_data_uri(image, max_side: int = 768) -> str:
    """A PIL image as a ``data:`` URI, downscaled to ``max_side``: PNG up to 256 px (pixel art stays
    exact), JPEG above (photos stay small)."""
    im = image.convert("RGB")
    im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    if max(im.size) <= 256:
        im.save(buf, format="PNG")
        kind = "png"
    else:
        im.save(buf, format="JPEG", quality=85)
        kind = "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _percentile_words(name: str, pct: float | None) -> str:
    if pct is None:
        return f"no {name} entropy"
    if pct >= 0.8:
        return f"{name} entropy in the top {max(1, round(100 * (1 - pct)))}% of the pool"
    return f"{name} entropy at the {_ordinal(round(100 * pct))} percentile"


def reason(record: dict, votes: dict, percentiles: dict[str, float | None], entropy: str) -> str:
    """Why an item is suspected, in words: its rollouts against / with the label, and an entropy."""
    label, k, failures = record.get("preferred"), votes["k"], votes["k"] - votes["parsed"]
    if votes["parsed"] == 0:
        parts = [f"no rollout gave a parsable verdict ({failures}/{k} format failures)"]
    else:
        if votes["against"]:
            parts = [f"{votes['against']}/{votes['parsed']} rollouts prefer Response {2 - label} against the label"]
        else:
            parts = [f"all {votes['parsed']} parsed rollouts agree with the label (Response {label + 1})"]
        if failures:
            parts.append(f"{failures}/{k} rollouts failed the judge format")
    parts.append(_percentile_words(entropy, percentiles.get(entropy)))
    return "; ".join(parts)


def _agreement(votes: dict) -> str:
    if votes["parsed"] == 0:
        return "none"
    if votes["against"] * 2 > votes["parsed"]:
        return "against"
    return "with" if votes["against"] == 0 else "split"


def _item_html(
    record: dict, pair, images: list, scores: dict, percentiles: dict, why: str, votes: dict, location
) -> str:
    esc = html.escape
    rid = record["id"]
    label = record.get("preferred", pair.preferred if pair is not None else 0)
    img_html = []
    for im in images:
        if isinstance(im, str):  # an image that could not be read: its reason
            img_html.append(f'<div class="noimg">{esc(im)}</div>')
        else:
            img_html.append(f'<img alt="image of {esc(rid)}" src="{image_data_uri(im)}">')
    responses = "".join(
        f'<div class="resp{" label" if label == j else ""}"><div class="small">Response {j + 1}'
        f"{' · stored label' if label == j else ''}</div>{esc(pair.responses[j]) if pair is not None else '–'}</div>"
        for j in (0, 1)
    )
    badges = []
    if record.get("flipped") is not None:
        badges.append(
            '<span class="badge flipped">lab: label flipped</span>'
            if record["flipped"]
            else '<span class="badge clean">lab: label correct</span>'
        )
    if record.get("hard"):
        badges.append('<span class="badge hard">lab: hard</span>')
    chips = []
    texts = record.get("texts") or []
    rollouts = []
    for r, v in enumerate(record.get("verdicts") or []):
        if v is None:
            chips.append('<span class="v fail" title="format failure">✗</span>')
            said = "format failure (no parsable verdict)"
        else:
            cls = "agree" if v == label else "disagree"
            chips.append(f'<span class="v {cls}" title="prefers Response {v + 1}">{v + 1}</span>')
            said = f"prefers Response {v + 1} ({'with' if v == label else 'against'} the label)"
        text = texts[r] if r < len(texts) else "(text not kept: score with --keep_texts true)"
        rollouts.append(f"<div class='small'>rollout {r + 1}: {esc(said)}</div><pre>{esc(text)}</pre>")
    pct = " · ".join(
        f'<span title="{esc(str(record.get(key)))} nats">{esc(name)} '
        f"{'–' if percentiles[name] is None else _ordinal(round(100 * percentiles[name]))}</span>"
        for name, key in ENTROPY_FIELDS.items()
        if name != "mixed"
    )
    where = [f"category {record.get('category') or (pair.category if pair is not None else None) or '–'}"]
    if pair is not None and pair.source:
        where.append(f"source {pair.source}")
    if location:
        where.append(str(location))
    meta = json.dumps(pair.meta, ensure_ascii=False, indent=1) if pair is not None and pair.meta else ""
    data = " ".join(f'data-s{name}="{scores[name]:.6f}"' for name in SIGNALS)
    truth = record.get("true_preferred")
    true_label = (
        f' <span class="badge flipped">lab truth: Response {truth + 1}</span>'
        if truth is not None and truth != label
        else ""
    )
    return (
        f'<article class="item" data-id="{esc(rid)}" data-label="{label}" '
        f'data-category="{esc(str(record.get("category") or (pair.category if pair else "") or ""))}" '
        f'data-agree="{_agreement(votes)}" data-ff="{votes["k"] - votes["parsed"]}" {data}>'
        f'<div class="top"><span class="rank"></span><code>{esc(rid)}</code>{"".join(badges)}{true_label}'
        f'<span class="small">{esc(" · ".join(where))}</span></div>'
        f'<div class="why">{esc(why)}</div>'
        f'<div class="pct">judge verdicts {"".join(chips)} · '
        f"percentile in the pool (higher = less certain): {pct}</div>"
        f'<div class="grid"><div class="imgs">{"".join(img_html) or "–"}</div>'
        f'<div><div class="small">question</div><div class="resp">{esc(pair.question) if pair else "–"}</div></div>'
        f"<div>{responses}</div></div>"
        f"<details><summary>every rollout's reasoning ({len(rollouts)})</summary>{''.join(rollouts)}</details>"
        + (f"<details><summary>meta</summary><pre>{esc(meta)}</pre></details>" if meta else "")
        + '<div class="act">'
        + "".join(f'<button data-a="{a}" title="key {a[0]}">{a}</button>' for a in ACTIONS)
        + '<button data-a="clear" title="key x">clear</button><input placeholder="note (key c)"></div></article>'
    )


def _page_items(records: Sequence[dict], score, votes: Sequence[dict], top: int) -> tuple[list[int], list[int]]:
    """Indices of the page's ranked items and of its no-verdict items, ``top`` of each, most suspect first."""
    order = sorted(range(len(records)), key=lambda i: (-score[i], records[i]["id"]))
    return [i for i in order if votes[i]["parsed"] > 0][:top], [i for i in order if votes[i]["parsed"] == 0][:top]


def page_ids(records: Sequence[dict], by: str, top: int, lam: float = 0.5) -> list[str]:
    """The ids the page embeds (:func:`render_review_page` with the same arguments)."""
    records = list(records)
    suspects, unparsed = _page_items(
        records, suspicion_scores(records, lam)[by], [label_votes(r) for r in records], top
    )
    return [records[i]["id"] for i in (*suspects, *unparsed)]


def _select(name: str, label: str, options: Sequence[tuple[str, str]]) -> str:
    opts = "".join(f'<option value="{html.escape(v)}">{html.escape(t)}</option>' for v, t in options)
    return f'<label>{html.escape(label)} <select id="{name}">{opts}</select></label>'


def render_review_page(
    records: Sequence[dict],
    pairs_by_id: dict,
    images_root: str | Path | None,
    *,
    by: str = "disagreement",
    top: int = 250,
    analysis: dict | None = None,
    title: str = "EGT review: suspected labels",
    locations: dict | None = None,
    bad_images: dict | None = None,
    key: str = "",
    page_size: int = PAGE_SIZE,
) -> str:
    """The page as one HTML string (see the module doc).

    ``top`` items of the ranking (and up to ``top`` without any verdict) are embedded; the page
    shows ``page_size`` (:data:`PAGE_SIZE`) at a time. ``locations`` maps ids to ``FILE: line N``; ``bad_images``
    maps ids to the reason their image cannot be read (shown in its place); ``key`` names the
    page's browser storage (default: a hash of the ids).
    """
    from egt.records import open_images

    records = list(records)
    scores = suspicion_scores(records, (analysis or {}).get("lam", 0.5))
    votes = [label_votes(r) for r in records]
    percentiles = {name: ranks([r.get(field) for r in records]) for name, field in ENTROPY_FIELDS.items()}
    entropy = by if by in ENTROPY_FIELDS else "peak"
    suspects, unparsed = _page_items(records, scores[by], votes, top)

    def item(i: int) -> str:
        record = records[i]
        pair = pairs_by_id.get(record["id"])
        if pair is None:
            images = []
        elif bad_images and record["id"] in bad_images:
            images = [f"image not shown: {bad_images[record['id']]}"]
        else:
            images = open_images(pair, images_root)
        pct = {n: None if record.get(f) is None else float(percentiles[n][i]) for n, f in ENTROPY_FIELDS.items()}
        return _item_html(
            record,
            pair,
            images,
            {n: float(scores[n][i]) for n in SIGNALS},
            pct,
            reason(record, votes[i], pct, entropy),
            votes[i],
            (locations or {}).get(record["id"]),
        )

    n = len(records)
    missing = missing_counts(records)
    banners = [w for w in (signal_warning(missing[by], n, by), position_warning(position_bias(records))) if w]
    format_rate = sum(r.get("format_rate", 1.0) for r in records) / max(1, n)
    if format_rate < LOW_FORMAT_RATE:
        banners.append(
            f"only {format_rate:.0%} of rollouts follow the judge format: most verdicts are missing, so "
            "the label-aware rankings have little to go on"
        )
    facts = [f"{len(suspects)} of {n} items ranked by {by}, most suspect first"]
    sus = (analysis or {}).get("suspicion", {})
    if sus.get("auroc_flipped", {}).get(by) is not None:
        facts.append(f"on this pool its AUROC for flipped labels is {sus['auroc_flipped'][by]:.3f}")
    if unparsed:
        facts.append(f"{sum(v['parsed'] == 0 for v in votes)} item(s) without any parsable verdict are listed apart")
    key = key or hashlib.sha256("\n".join(r["id"] for r in records).encode()).hexdigest()[:16]
    categories = sorted({str(r.get("category")) for r in records if r.get("category")})
    esc = html.escape
    toolbar = (
        '<div class="bar">'
        + _select("sort", "sort by", [(s, s) for s in (by, *[s for s in SIGNALS if s != by])])
        + _select("cat", "category", [("", "all"), *[(c, c) for c in categories]])
        + _select(
            "agree",
            "rollouts vs label",
            [("", "all"), ("against", "mostly against"), ("split", "split"), ("with", "all with")],
        )
        + _select("ff", "format failures", [("", "all"), ("with", "with"), ("without", "without")])
        + _select("status", "status", [("", "all"), ("todo", "not reviewed"), ("done", "reviewed")])
        + '<label>id <input id="search" placeholder="search (key /)"></label>'
        + '<button id="prev">◀</button><span id="pageinfo"></span><button id="next">▶</button>'
        + '<button id="export">export corrections.jsonl</button><span id="count"></span><span id="exported"></span>'
        + "</div>"
    )
    help_line = (
        "Keys: k keep · f flip · d drop · u unsure · x clear · c note · j/↓ next · p/↑ previous · / search. "
        "Marks stay in this browser until exported; the stored label is shaded green."
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_asset('review_page.css')}</style></head>"
        f'<body data-key="{esc(key)}" data-page-size="{page_size}"><header><h1>{esc(title)}</h1>'
        f'<p class="sub">{esc(" · ".join(facts))}. {esc(help_line)}</p>'
        + "".join(f'<div class="banner">⚠ {esc(b)}</div>' for b in banners)
        + toolbar
        + '</header><main><section id="suspects">'
        + "".join(item(i) for i in suspects)
        + "</section>"
        + (
            f'<h2>Format failures: no parsable verdict ({len(unparsed)} shown)</h2><section id="unparsed">'
            + "".join(item(i) for i in unparsed)
            + "</section>"
            if unparsed
            else ""
        )
        + '</main><div id="lightbox"><img alt="enlarged image"></div>'
        + f"<script>{_asset('review_page.js')}</script></body></html>\n"
    )


def write_review_page(path: str | Path, records: Sequence[dict], pairs_by_id: dict, images_root, **kwargs) -> Path:
    atomic_write_text(path, render_review_page(records, pairs_by_id, images_root, **kwargs))
    return Path(path)
