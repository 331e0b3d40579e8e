"""egt.data.store: resume by id, one duplicate rule, one overwrite rule, nothing complete lost to a kill."""

from __future__ import annotations

import json

import pytest

from egt.data.atomic import atomic_write_jsonl
from egt.data.store import OVERWRITE_HINT, ResumableStore, read_store
from egt.errors import EgtError

HEADER = {"format": "test/1", "seed": 0}


def filled(path, n=3, header=HEADER) -> ResumableStore:
    store = ResumableStore.open(path, header)
    store.append([{"id": f"r{i}", "v": i} for i in range(n)])
    store.close()
    return store


def test_reopening_with_the_same_header_resumes_every_record(tmp_path):
    path = tmp_path / "run.partial"
    filled(path)
    again = ResumableStore.open(path, HEADER)
    assert list(again.records) == ["r0", "r1", "r2"] and "r1" in again and len(again) == 3
    again.append([{"id": "r3", "v": 3}], sync=False)
    again.sync()
    again.close()
    assert read_store(path)[1]["r3"] == {"id": "r3", "v": 3}
    assert [r["v"] for r in ResumableStore.open(path, HEADER).ordered(["r3", "r0"])] == [3, 0]


def test_a_resumed_store_keeps_the_header_it_started_with(tmp_path):
    path = tmp_path / "run.partial"
    filled(path, header={**HEADER, "batch_size": 4})
    store = ResumableStore.open(path, {**HEADER, "batch_size": 9}, key=lambda h: h["seed"])
    assert store.header["batch_size"] == 4 and len(store) == 3


def test_a_repeated_id_is_an_update_the_latest_line_wins(tmp_path):
    path = tmp_path / "run.partial"
    filled(path)
    store = ResumableStore.open(path, HEADER)
    store.append([{"id": "r1", "v": "redone"}])
    store.close()
    assert store.records["r1"]["v"] == "redone"
    assert ResumableStore.open(path, HEADER).records["r1"] == {"id": "r1", "v": "redone"}
    assert path.read_text().count('"r1"') == 2  # appended, never rewritten in place


def test_a_cut_at_any_byte_loses_no_complete_record(tmp_path):
    """A kill can stop a write at any byte: every line complete before the cut is kept, the torn
    one is dropped (and truncated away, so the next append starts on a clean line)."""
    path = tmp_path / "run.partial"
    filled(path, n=4)
    raw = path.read_bytes()
    header_end = raw.index(b"\n") + 1
    for cut in range(header_end, len(raw) + 1):
        path.write_bytes(raw[:cut])
        complete = raw[:cut].count(b"\n") - 1  # lines after the header that end in a newline
        store = ResumableStore.open(path, HEADER)
        assert list(store.records) == [f"r{i}" for i in range(complete)], cut
        store.append([{"id": "new", "v": None}])
        store.close()
        assert read_store(path)[1]["new"] == {"id": "new", "v": None}


def test_an_interrupted_final_write_leaves_no_file(tmp_path):
    def records():
        yield {"id": "a"}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_jsonl(tmp_path / "out.jsonl", records())
    assert list(tmp_path.iterdir()) == []


def test_other_settings_are_refused_naming_the_difference_unless_overwrite(tmp_path):
    path = tmp_path / "run.partial"
    filled(path)
    with pytest.raises(EgtError) as err:
        ResumableStore.open(path, {**HEADER, "seed": 1})
    assert str(err.value) == f"{path}: holds an unfinished run with other settings (seed); {OVERWRITE_HINT}"
    assert "--overwrite" in OVERWRITE_HINT
    assert len(read_store(path)[1]) == 3  # untouched
    fresh = ResumableStore.open(path, {**HEADER, "seed": 1}, overwrite=True)
    assert len(fresh) == 0 and read_store(path)[0] == {**HEADER, "seed": 1}


@pytest.mark.parametrize(
    "line, why",
    [
        ("not json", "malformed JSON"),
        ('["a list"]', "a record without a string 'id'"),
        ('{"v": 1}', "a record without a string 'id'"),
        ('{"id": "zz"}', "id 'zz' is not in the dataset"),
    ],
)
def test_a_corrupt_line_is_one_message_and_nothing_is_touched(tmp_path, line, why):
    path = tmp_path / "run.partial"
    filled(path, n=1)
    path.write_text(path.read_text() + line + "\n" + json.dumps({"id": "r0"}) + "\n")
    before = path.read_bytes()
    with pytest.raises(EgtError) as err:
        ResumableStore.open(path, HEADER, valid_ids={"r0"})
    assert str(err.value).startswith(f"{path}: line 3: corrupt resume file ({why}")
    assert str(err.value).endswith(OVERWRITE_HINT) and path.read_bytes() == before
    assert len(ResumableStore.open(path, HEADER, valid_ids={"r0"}, overwrite=True)) == 0


def test_a_sidecar_header_store(tmp_path):
    """The math journal's layout: settings in run.json, records only in the JSONL."""
    path, sidecar = tmp_path / "journal.jsonl", tmp_path / "run.json"
    store = ResumableStore.open(path, HEADER, header_path=sidecar)
    store.append([{"id": "x"}])
    store.close()
    assert json.loads(sidecar.read_text()) == HEADER and path.read_text() == '{"id": "x"}\n'
    assert list(ResumableStore.open(path, HEADER, header_path=sidecar).records) == ["x"]
    with pytest.raises(EgtError, match="other settings"):
        ResumableStore.open(path, {"seed": 2}, header_path=sidecar)
    sidecar.unlink()
    with pytest.raises(EgtError, match=r"line 1: corrupt resume file \(no header: run.json is missing\)"):
        ResumableStore.open(path, HEADER, header_path=sidecar)
