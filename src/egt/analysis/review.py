"""A self-contained HTML review page of the highest-entropy items (EGT arXiv 2602.01884 §4.2).

EGT's claim is that high response entropy flags ambiguous, very hard or mislabelled samples. This
page lets a dataset owner check that by eye: the top items by entropy, each with its image(s)
(embedded as base64 PNG — the page is one file, no network), the question, both responses, the
stored label, the judge's verdict in every rollout (mapped to the stored responses), the entropies
and the first rollout's reasoning. On the lab it also shows the ground truth (flipped / hard).
All text is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

from egt.analysis.stats import ENTROPY_FIELDS, ranks
from egt.data.atomic import atomic_write_text

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}p.sub{color:#555;margin:0 0 16px;font-size:13px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border:1px solid #ddd;padding:6px 8px;vertical-align:top;text-align:left}
th{background:#f3f4f6;position:sticky;top:0}
tr.item:nth-child(even){background:#fafafa}
img{width:112px;image-rendering:pixelated;border:1px solid #ccc;display:block;margin-bottom:4px}
.pref{background:#e7f5e9;border-left:3px solid #2e8b57}
.badge{display:inline-block;padding:1px 6px;border-radius:8px;font-size:11px;margin:1px;color:#fff}
.flipped{background:#c0392b}.hard{background:#d68910}.clean{background:#7f8c8d}
.v{display:inline-block;min-width:18px;text-align:center;border-radius:4px;margin:1px;padding:0 3px;font-weight:600}
.agree{background:#d4efdf;color:#1e8449}.disagree{background:#fadbd8;color:#922b21}.fail{background:#eee;color:#777}
details{max-width:360px}summary{cursor:pointer;color:#2c3e50}
.num{font-variant-numeric:tabular-nums;white-space:nowrap}
"""


def image_data_uri(image, max_side: int = 256) -> str:
    """A PIL image as a ``data:image/png;base64,…`` URI, downscaled to ``max_side``."""
    im = image.convert("RGB")
    im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def top_entropy(records: Sequence[dict], by: str = "answer", top: int = 50) -> list[dict]:
    """The ``top`` least certain records by ``by``, as curation ranks them: items with format failures
    first, then highest entropy (missing = most uncertain first); ties by id."""
    from egt.entropy.score_store import format_failures

    key = ENTROPY_FIELDS[by]
    r = ranks([rec.get(key) for rec in records], [format_failures(rec) for rec in records])
    order = sorted(range(len(records)), key=lambda i: (-r[i], records[i]["id"]))
    return [records[i] for i in order[:top]]


def _fmt(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _verdicts_html(record: dict) -> str:
    label = record.get("preferred")
    cells = []
    for v in record.get("verdicts", []):
        if v is None:
            cells.append('<span class="v fail" title="format failure">✗</span>')
        else:
            cls = "agree" if v == label else "disagree"
            cells.append(f'<span class="v {cls}" title="prefers response {v + 1}">{v + 1}</span>')
    k = len(record.get("verdicts", []))
    agree = sum(v == label for v in record.get("verdicts", []))
    return "".join(cells) + f'<div class="num">{agree}/{k} agree with label</div>'


def _row_html(rank: int, record: dict, pair, images: list) -> str:
    esc = html.escape
    imgs = "".join(f'<img alt="image of {esc(record["id"])}" src="{image_data_uri(im)}">' for im in images) or "–"
    label = record.get("preferred", pair.preferred if pair is not None else None)
    responses = []
    for j in (0, 1):
        text = esc(pair.responses[j]) if pair is not None else "–"
        cls = ' class="pref"' if label == j else ""
        responses.append(f"<td{cls}>{text}</td>")
    badges = []
    if record.get("flipped") is not None:
        badges.append(
            '<span class="badge flipped">label flipped</span>'
            if record["flipped"]
            else '<span class="badge clean">label correct</span>'
        )
    if record.get("hard"):
        badges.append('<span class="badge hard">hard</span>')
    texts = record.get("texts") or []
    reasoning = (
        (
            f"<details><summary>rollout 1 of {len(texts)}</summary><pre style='white-space:pre-wrap'>"
            f"{esc(texts[0])}</pre></details>"
        )
        if texts
        else "–"
    )
    question = esc(pair.question) if pair is not None else "–"
    label_text = "–" if label is None else f"Response {label + 1}"
    truth = record.get("true_preferred")
    if truth is not None and truth != label:
        label_text += f'<div class="badge flipped">true: Response {truth + 1}</div>'
    return (
        f'<tr class="item" data-id="{esc(record["id"])}"><td class="num">{rank}</td>'
        f"<td><code>{esc(record['id'])}</code><div>{''.join(badges)}</div></td>"
        f"<td>{imgs}</td><td>{question}</td>{''.join(responses)}"
        f"<td>{label_text}</td><td>{_verdicts_html(record)}</td>"
        f'<td class="num">answer {_fmt(record.get("answer_entropy"))}'
        f"<br>sentence {_fmt(record.get('sentence_entropy'))}"
        f"<br>vote {_fmt(record.get('vote_entropy'))}<br>peak {_fmt(record.get('peak_entropy'))}"
        f"<br>accuracy {_fmt(record.get('accuracy'), 2)}</td>"
        f"<td>{reasoning}</td></tr>"
    )


def render_review_page(
    records: Sequence[dict],
    pairs_by_id: dict,
    images_root: str | Path | None,
    *,
    by: str = "answer",
    top: int = 50,
    analysis: dict | None = None,
    title: str = "EGT review: highest-entropy items",
) -> str:
    """The page as one HTML string (see the module doc)."""
    from egt.records import open_images

    chosen = top_entropy(records, by, top)
    rows = []
    for rank, record in enumerate(chosen, start=1):
        pair = pairs_by_id.get(record["id"])
        images = open_images(pair, images_root) if pair is not None else []
        rows.append(_row_html(rank, record, pair, images))
    facts = [f"{len(chosen)} of {len(records)} items, by {html.escape(by)} entropy, highest first"]
    if analysis:
        rho = analysis.get("spearman", {}).get(by)
        facts.append(f"Spearman ρ(entropy, rollout accuracy) = {_fmt(rho)}")
        for name in ("flipped", "hard"):
            value = analysis.get(f"auroc_{name}", {}).get(by)
            if value is not None:
                facts.append(f"AUROC {name} = {_fmt(value)}")
    head = (
        "<tr><th>#</th><th>item</th><th>image</th><th>question</th><th>response 1</th><th>response 2</th>"
        "<th>label</th><th>judge verdicts</th><th>scores</th><th>reasoning</th></tr>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="sub">{" · ".join(facts)}. The labelled-preferred response is '
        "shaded green; verdicts are green when they agree with the label, red when not, ✗ for a format failure.</p>"
        f'<table id="review"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></body></html>\n'
    )


def write_review_page(path: str | Path, records: Sequence[dict], pairs_by_id: dict, images_root, **kwargs) -> Path:
    atomic_write_text(path, render_review_page(records, pairs_by_id, images_root, **kwargs))
    return Path(path)
