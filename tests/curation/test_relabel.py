"""``egt relabel``: corrections applied with provenance; every bad line refused with file, line and field."""

from __future__ import annotations

import json

import pytest

from egt.cli import main
from egt.curation.relabel import relabel_pool
from egt.errors import EgtError
from egt.records import read_pairs


def write_lines(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_flips_and_drops_are_applied_with_provenance_and_the_lab_truth_follows(tmp_path, small_lab, pool):
    flipped = next(p for p in pool if p.meta["flipped"])  # its stored label is wrong: a flip makes it right
    clean = next(p for p in pool if not p.meta["flipped"])
    dropped, kept = pool[5].id, pool[6].id
    fixes = write_lines(
        tmp_path / "corrections.jsonl",
        [
            {
                "id": flipped.id,
                "action": "flip",
                "note": "the <b>square</b> is red",
                "time": "t1",
                "label": 0 + flipped.preferred,
            },
            {"id": clean.id, "action": "flip", "note": "", "time": "t2"},
            {"id": dropped, "action": "drop", "note": "unreadable", "time": "t3"},
            {"id": kept, "action": "keep", "note": "", "time": "t4"},
            {"id": kept, "action": "keep", "note": "again", "time": "t5"},  # the same action twice is one
        ],
    )
    out = tmp_path / "fixed"
    s = relabel_pool(small_lab / "rl_pool.jsonl", fixes, out)
    assert s["counts"] == {"pool": 32, "written": 31, "keep": 1, "flip": 2, "drop": 1, "unsure": 0}
    assert s["flipped_ids"] == sorted([flipped.id, clean.id], key=[p.id for p in pool].index)
    new = {p.id: p for p in read_pairs(out / "relabelled.jsonl")}  # a pool like any other, images beside it
    assert dropped not in new and len(new) == 31 and (out / new[kept].images[0]).is_file()
    assert new[flipped.id].preferred == 1 - flipped.preferred and new[flipped.id].meta["flipped"] is False
    assert new[clean.id].preferred == 1 - clean.preferred and new[clean.id].meta["flipped"] is True
    review = new[flipped.id].meta["review"]
    assert review["action"] == "flip" and review["note"] == "the <b>square</b> is red"
    assert (review["label_before"], review["label_after"]) == (flipped.preferred, 1 - flipped.preferred)
    assert review["corrections"].endswith("corrections.jsonl: line 1")
    assert new[kept].meta["review"]["action"] == "keep" and new[kept].preferred == pool[6].preferred
    assert "review" not in new[pool[7].id].meta and new[pool[7].id] == pool[7]
    assert json.loads((out / "relabel.json").read_text())["dropped_ids"] == [dropped]


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"id": "nope", "action": "flip"}], r"line 1 \(id='nope'\): field 'id': no such item in"),
        ([{"id": "rl_pool-00000", "action": "burn"}], r"line 1 \(id='rl_pool-00000'\): field 'action': 'burn' is not"),
        (
            [{"id": "rl_pool-00000", "action": "flip"}, {"id": "rl_pool-00000", "action": "drop"}],
            r"line 2 \(id='rl_pool-00000'\): field 'action': 'drop' conflicts with 'flip' on line 1",
        ),
        ([{"action": "flip"}], r"line 1: field 'id': missing"),
        ([{"id": "rl_pool-00000", "action": "keep", "note": 3}], r"line 1 \(id='rl_pool-00000'\): field 'note'"),
        ([{"id": "rl_pool-00000", "action": "flip", "label": "LABEL"}], r"field 'label': the reviewer saw"),
        ([], "no corrections in the file"),
    ],
)
def test_bad_corrections_are_one_line_naming_file_line_and_field_and_write_nothing(
    tmp_path, small_lab, pool, rows, message
):
    stale = {"rl_pool-00000": 1 - pool[0].preferred}  # a label the pool does not store: relabelled already?
    rows = [{**r, "label": stale[r["id"]]} if r.get("label") == "LABEL" else r for r in rows]
    fixes = write_lines(tmp_path / "c.jsonl", rows)
    with pytest.raises(EgtError, match=message) as err:
        relabel_pool(small_lab / "rl_pool.jsonl", fixes, tmp_path / "out")
    assert "\n" not in str(err.value) and str(err.value).startswith(str(fixes))
    assert not (tmp_path / "out").exists()


def test_cli_relabel_exit_codes(tmp_path, small_lab, pool, capsys):
    fixes = write_lines(tmp_path / "c.jsonl", [{"id": pool[0].id, "action": "drop"}])
    argv = ["relabel", "--data", str(small_lab / "rl_pool.jsonl"), "--corrections", str(fixes)]
    assert main([*argv, "--output_dir", str(tmp_path / "ok")]) == 0
    assert "flipped / dropped" in capsys.readouterr().out
    write_lines(fixes, [{"id": pool[0].id, "action": "drop"}, {"id": pool[0].id, "action": "keep"}])
    assert main([*argv, "--output_dir", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err.startswith("egt: error:") and not (tmp_path / "bad").exists()
