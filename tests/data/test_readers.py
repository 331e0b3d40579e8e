"""egt.data.readers: one reader for JSONL / JSON / parquet / saved datasets folders; errors name file, record, field."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from egt.data.readers import check_unique_ids, decode_image_cell, iter_jsonl, open_image, parse_json_line, read_records
from egt.errors import EgtError
from egt.records import PreferencePair, open_images, read_pairs, write_pairs

ROWS = [{"id": "a", "x": 1}, {"id": "b", "x": 2}]


def png_bytes(colour=(255, 0, 0)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(buf, format="PNG")
    return buf.getvalue()


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# --------------------------------------------------------------------------------------------
# every format gives the same rows, each with its location


def test_jsonl_gzip_json_list_and_parquet_read_the_same_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = write_jsonl(tmp_path / "d.jsonl", ROWS)
    with gzip.open(tmp_path / "d.jsonl.gz", "wt") as fh:
        fh.write(jsonl.read_text())
    (tmp_path / "d.json").write_text(json.dumps(ROWS, indent=1))
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "d.parquet")
    for name, unit in [("d.jsonl", "line"), ("d.jsonl.gz", "line"), ("d.json", "record"), ("d.parquet", "record")]:
        got = list(read_records(tmp_path / name))
        assert [row for _, row in got] == ROWS, name
        first = 1 if unit == "line" else 0
        assert [loc for loc, _ in got] == [
            f"{tmp_path / name}: {unit} {first}",
            f"{tmp_path / name}: {unit} {first + 1}",
        ]


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a"}\n\n   \n{"id": "b"}\n')
    assert [n for n, _ in iter_jsonl(path)] == [1, 4]


def test_a_saved_datasets_folder_keeps_image_cells_undecoded_until_asked(tmp_path):
    pairs = [PreferencePair(id="p", question="q", responses=("a", "b"), preferred=1, images=["img.png"])]
    Image.new("RGB", (5, 3), (0, 255, 0)).save(tmp_path / "img.png")
    folder = write_pairs(pairs, tmp_path / "ds", images_root=tmp_path)
    (loc, row), *rest = list(read_records(folder))
    assert not rest and loc == f"{folder}: record 0"
    assert isinstance(row["images"][0], dict) and row["images"][0]["bytes"]  # a {bytes, path} cell
    back = read_pairs(folder)[0]
    assert isinstance(back.images[0], Image.Image) and back.images[0].size == (5, 3)


def test_unknown_format_missing_path_and_datasetdict(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(EgtError, match=r"x.csv: unknown format"):
        list(read_records(tmp_path / "x.csv"))
    with pytest.raises(EgtError, match=r"nope.jsonl: no such file or folder"):
        list(read_records(tmp_path / "nope.jsonl"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(EgtError, match="neither a saved dataset nor parquet files"):
        list(read_records(tmp_path / "empty"))


# --------------------------------------------------------------------------------------------
# malformed JSON: file, line, column and what is wrong, in words


def test_a_raw_control_character_names_file_line_and_column_in_words(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b", "question": "two\tcolumns"}\n')
    with pytest.raises(EgtError) as err:
        list(read_records(path))
    msg = str(err.value)
    assert msg.startswith(f"{path}: line 2: malformed JSON at column 29: a raw control character"), msg
    assert "escape it" in msg and 'near \'b", "question": "two\\tcolumns"}\'' in msg
    assert "Invalid control character" not in msg


@pytest.mark.parametrize(
    "line, words",
    [
        ('{"id": "a",', "the text ends before the JSON value does"),
        ('{"id": "a"}{"id": "b"}', "more than one JSON value"),
        ("{'id': 'a'}", "not in double quotes"),
        ('{"id": "a" "x": 1}', "a ',' is missing"),
        ("hello", "a value is missing"),
    ],
)
def test_other_json_mistakes_are_said_in_words(tmp_path, line, words):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "ok"}\n' + line + "\n")
    with pytest.raises(EgtError, match=f"bad.jsonl: line 2: malformed JSON at column [0-9]+: .*{words}"):
        list(iter_jsonl(path))


def test_a_malformed_json_list_names_the_file_line(tmp_path):
    path = tmp_path / "all_data.json"
    path.write_text('[\n {"id": "a"},\n {"id": "b",}\n]\n')
    with pytest.raises(EgtError, match=r"all_data.json: line 3: malformed JSON"):
        list(read_records(path))


def test_a_line_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "\xff"}\n')
    with pytest.raises(EgtError, match=r"bad.jsonl: line 2: not UTF-8"):
        list(iter_jsonl(path))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(json_values)
def test_parse_json_line_reads_back_what_json_dumps_wrote(value):
    assert parse_json_line(json.dumps(value, ensure_ascii=False) + "\n", "f: line 1") == value


@given(st.text(min_size=1))
def test_parse_json_line_fails_only_with_a_located_readable_error(text):
    try:
        json.loads(text.rstrip("\r\n"))
    except ValueError:
        with pytest.raises(EgtError, match=r"^f.jsonl: line 7: malformed JSON at column \d+: "):
            parse_json_line(text, "f.jsonl: line 7")
    else:
        parse_json_line(text, "f.jsonl: line 7")


# --------------------------------------------------------------------------------------------
# images, ids


def test_image_cells_decode_or_name_the_record_and_field():
    row = {"id": "r1", "images": None}
    assert decode_image_cell({"bytes": png_bytes(), "path": None}, "f: record 0", row).size == (4, 4)
    assert decode_image_cell({"bytes": None, "path": "a/b.png"}, "f: record 0", row) == "a/b.png"
    with pytest.raises(EgtError, match=r"^f: record 3 \(id='r1'\): field 'images': cannot decode the embedded image"):
        decode_image_cell({"bytes": b"not a png", "path": None}, "f: record 3", row)
    with pytest.raises(EgtError, match=r"^f: record 3 \(id='r1'\): field 'picture': expected an image path"):
        decode_image_cell(7, "f: record 3", row, "picture")


def test_a_missing_image_names_the_image_file_the_record_and_the_field(tmp_path):
    data = write_jsonl(
        tmp_path / "pairs.jsonl",
        [{"id": "m1", "question": "q", "images": ["img/gone.png"], "responses": ["a", "b"], "preferred": 0}],
    )
    pair = read_pairs(data)[0]
    with pytest.raises(EgtError) as err:
        open_images(pair, tmp_path)
    assert str(err.value) == (
        f"{data}: line 1 (id='m1'): field 'images': image file not found: {tmp_path / 'img' / 'gone.png'}"
    )
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "gone.png").write_bytes(b"garbage")
    with pytest.raises(
        EgtError, match=r"^.*pairs.jsonl: line 1 \(id='m1'\): field 'images': cannot decode image .*gone"
    ):
        open_images(pair, tmp_path)
    with pytest.raises(EgtError, match=r"id='m1': field 'images': cannot decode image .*gone.png"):
        open_image("img/gone.png", tmp_path, "m1")
    with pytest.raises(EgtError, match="escapes the images root"):
        open_image("../outside.png", tmp_path, "m1")
    pair.images = ["../outside.png"]
    with pytest.raises(EgtError, match=r"pairs.jsonl: line 1 \(id='m1'\): field 'images': image path .* escapes"):
        open_images(pair, tmp_path)


def test_repeated_ids_are_named_with_their_count_and_the_reason():
    check_unique_ids(["a", "b"], "f.jsonl")
    with pytest.raises(EgtError, match=r"^f.jsonl: id='b': field 'id': duplicate id \(3 rows\); why not$"):
        check_unique_ids(["a", "b", "b", "c", "b"], "f.jsonl", "why not")
