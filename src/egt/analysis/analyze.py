"""``egt analyze``: statistics, plots and the review page of a scored pool, written into one folder.

Outputs in ``DIR``: ``analysis.json`` (:func:`egt.analysis.stats.analyze_records`, the suspicion
rankings of :func:`egt.analysis.suspicion.suspicion_report` under ``suspicion``, ``warnings``,
and where the scores came from), ``entropy_histogram.png``, ``accuracy_by_bin.png`` and
``review.html`` (:mod:`egt.analysis.review`). Inputs are read and checked, every image of the page
decoded and the page rendered before any file is written: an image that is missing or does not
decode stops the run naming the file, line and field, or with ``skip_bad`` is shown as unreadable
on the page (the item stays: it is one a cleaner wants to see) and counted in ``bad_images``.
"""

from __future__ import annotations

from pathlib import Path

from egt.errors import EgtError

ANALYSIS, HISTOGRAM, BINS_PLOT, REVIEW = "analysis.json", "entropy_histogram.png", "accuracy_by_bin.png", "review.html"


def analyze_scores(
    scores_path: str | Path,
    out_dir: str | Path,
    *,
    data: str | Path | None = None,
    images_dir: str | Path | None = None,
    n_bins: int = 5,
    review_by: str = "disagreement",
    review_top: int = 250,
    lam: float = 0.5,
    skip_bad: bool = False,
) -> dict:
    """Analyse ``scores_path`` into ``out_dir``; returns the analysis dict (with ``files``).

    ``data`` (for the review page's questions, responses and images) defaults to the dataset the
    scores header names; ``review_top=0`` skips the page and needs no data.
    """
    from egt.analysis.plots import plot_accuracy_by_bin, plot_entropy_histogram
    from egt.analysis.review import page_ids, render_review_page
    from egt.analysis.stats import analyze_records
    from egt.analysis.suspicion import SIGNALS, position_warning, signal_warning, suspicion_report
    from egt.data.atomic import atomic_write_json, atomic_write_text
    from egt.data.readers import image_problems
    from egt.entropy.score_store import read_scores, show_ids
    from egt.records import default_images_root, read_pairs

    if n_bins < 1:
        raise EgtError(f"--bins: must be ≥ 1, got {n_bins}")
    if review_by not in SIGNALS:
        raise EgtError(f"--review_by: unknown signal {review_by!r} (one of {', '.join(SIGNALS)})")
    meta, records = read_scores(scores_path)
    for r in records:
        if not isinstance(r.get("accuracy"), (int, float)):
            raise EgtError(f"{scores_path}: id={r['id']!r}: field 'accuracy': missing or not a number")
    header = meta.get("header", {})
    analysis = analyze_records(records, n_bins=n_bins, lam=lam)
    analysis["scores"] = str(Path(scores_path).resolve())
    analysis["model"] = header.get("model", {}).get("path")
    analysis["scoring"] = header.get("scoring")
    analysis["lam"] = lam
    analysis["suspicion"] = suspicion_report(records, lam)
    analysis["review_by"] = review_by
    warnings = (
        signal_warning(analysis["suspicion"]["missing"][review_by], len(records), review_by),
        position_warning(analysis["suspicion"]["position"]),
    )
    analysis["warnings"] = [w for w in warnings if w]

    page = None
    if review_top > 0:
        recorded = header.get("data", {}).get("path")
        data_path = Path(data) if data else Path(recorded) if recorded else None
        if data_path is None or (not data and not data_path.exists()):
            raise EgtError(
                f"{scores_path}: the dataset it was scored from ({recorded or 'not recorded'}) is not here; "
                "pass --data PATH for the review page, or --review_top 0 to skip it"
            )
        pairs = read_pairs(data_path)
        by_id = {p.id: p for p in pairs}
        extra = [r["id"] for r in records if r["id"] not in by_id]
        if extra:
            raise EgtError(
                f"{len(extra)} scored id(s) are not in {data_path}: {show_ids(extra)}; pass the dataset "
                "that was scored as --data"
            )
        if images_dir:
            root = Path(images_dir)
        elif not data and header.get("data", {}).get("images_root"):
            root = Path(header["data"]["images_root"])
        else:
            root = default_images_root(data_path)
        problems = image_problems([by_id[i] for i in page_ids(records, review_by, review_top, lam)], root)
        if problems and not skip_bad:
            raise EgtError(
                f"{problems[0][1]} — {len(problems)} item(s) have an unreadable image; pass --skip_bad to show "
                "them on the page without it"
            )
        bad = {pair.id: message for pair, message in problems}
        analysis["bad_images"] = {"count": len(bad), "ids": sorted(bad)[:20]}
        if bad:
            analysis["warnings"].append(
                f"{len(bad)} item(s) have an unreadable image (shown without it): first {problems[0][1]}"
            )
        page = render_review_page(
            records,
            by_id,
            root,
            by=review_by,
            top=review_top,
            analysis=analysis,
            locations={p.id: p.location for p in pairs},
            bad_images=bad,
            key=f"{data_path.resolve()}|{Path(scores_path).resolve()}",
        )

    out = Path(out_dir)
    files = {
        "histogram": str(plot_entropy_histogram(records, out / HISTOGRAM)),
        "accuracy_by_bin": str(plot_accuracy_by_bin(analysis, out / BINS_PLOT)),
    }
    if page is not None:
        files["review"] = str(atomic_write_text(out / REVIEW, page))
    analysis["files"] = files
    atomic_write_json(out / ANALYSIS, analysis)
    files["analysis"] = str(out / ANALYSIS)
    return analysis
