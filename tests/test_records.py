"""Records: round-trips in every format, and every bad input named by file, record and field."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from egt.data.readers import resolve_image_path
from egt.errors import EgtError
from egt.records import PreferencePair, open_images, read_pairs, write_pairs


def _pairs(with_images: bool = True) -> list[PreferencePair]:
    return [
        PreferencePair(
            id="a",
            question="q1?",
            responses=("x", "y"),
            preferred=0,
            images=["img/a.png"] if with_images else [],
            category="c1",
            meta={"k": 1},
        ),
        PreferencePair(
            id="b",
            question="q2?",
            responses=("u", "v"),
            preferred=1,
            images=["img/a.png", "img/b.png"] if with_images else [],
            source="s",
        ),
    ]


@pytest.fixture
def image_root(tmp_path):
    (tmp_path / "img").mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "img" / "a.png")
    Image.new("RGB", (8, 8), (0, 0, 255)).save(tmp_path / "img" / "b.png")
    return tmp_path


def test_jsonl_round_trip(tmp_path):
    path = write_pairs(_pairs(), tmp_path / "d.jsonl")
    back = read_pairs(path)
    assert [p.to_json() for p in back] == [p.to_json() for p in _pairs()]


@pytest.mark.parametrize("suffix", [".parquet", ""])
def test_embedded_image_formats_round_trip(tmp_path, image_root, suffix):
    path = write_pairs(_pairs(), tmp_path / f"d{suffix or '_ds'}", images_root=image_root)
    back = read_pairs(path)
    assert [p.id for p in back] == ["a", "b"]
    assert back[1].responses == ("u", "v") and back[1].preferred == 1 and back[0].meta == {"k": 1}
    assert back[0].category == "c1" and back[1].source == "s"
    pixels = [img.getpixel((0, 0)) for img in open_images(back[1], None)]
    assert pixels == [(255, 0, 0), (0, 0, 255)]


def _write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


GOOD = {"id": "r1", "question": "q", "responses": ["a", "b"], "preferred": 0}


@pytest.mark.parametrize(
    "record, needle",
    [
        ({**GOOD, "responses": ["a", "b", "c"]}, "field 'responses': expected exactly 2 responses, got 3"),
        ({**GOOD, "preferred": 2}, "field 'preferred'"),
        ({**GOOD, "preferred": True}, "field 'preferred'"),
        ({k: v for k, v in GOOD.items() if k != "question"}, "field 'question'"),
        ({**GOOD, "responses": ["a", 3]}, "field 'responses'"),
        ({**GOOD, "images": "x.png"}, "field 'images'"),
        ({**GOOD, "id": ""}, "field 'id'"),
    ],
)
def test_bad_record_names_file_line_and_field(tmp_path, record, needle):
    path = _write_lines(tmp_path / "bad.jsonl", [json.dumps(GOOD | {"id": "ok"}), json.dumps(record)])
    with pytest.raises(EgtError) as e:
        read_pairs(path)
    msg = str(e.value)
    assert str(path) in msg and "line 2" in msg and needle in msg


def test_malformed_json_line(tmp_path):
    path = _write_lines(tmp_path / "bad.jsonl", [json.dumps(GOOD), "{not json"])
    with pytest.raises(EgtError, match=r"bad.jsonl: line 2: malformed JSON"):
        read_pairs(path)


def test_empty_dataset_and_duplicates(tmp_path):
    with pytest.raises(EgtError, match="empty"):
        read_pairs(_write_lines(tmp_path / "e.jsonl", []))
    with pytest.raises(EgtError, match="duplicate id"):
        read_pairs(_write_lines(tmp_path / "d.jsonl", [json.dumps(GOOD), json.dumps(GOOD)]))


def test_image_path_may_not_escape_root(tmp_path, image_root):
    with pytest.raises(EgtError, match="escapes the images root"):
        resolve_image_path("../secret.png", image_root / "img")
    with pytest.raises(EgtError, match="escapes the images root"):
        resolve_image_path("/etc/passwd", image_root)
    (image_root / "link.png").symlink_to("/etc/hostname")
    with pytest.raises(EgtError, match="escapes the images root"):
        resolve_image_path("link.png", image_root)


def test_missing_and_corrupt_images(tmp_path, image_root):
    (image_root / "img" / "bad.png").write_bytes(b"not a png")
    missing = PreferencePair(id="m", question="q", responses=("a", "b"), preferred=0, images=["img/none.png"])
    corrupt = PreferencePair(id="c", question="q", responses=("a", "b"), preferred=0, images=["img/bad.png"])
    with pytest.raises(EgtError, match=r"id='m': field 'images': image file not found"):
        open_images(missing, image_root)
    with pytest.raises(EgtError, match=r"id='c': field 'images': cannot decode image"):
        open_images(corrupt, image_root)


def test_failed_write_leaves_no_partial_file(tmp_path):
    bad = [PreferencePair(id="x", question="q", responses=("a", "b"), preferred=0, images=[Image.new("RGB", (2, 2))])]
    with pytest.raises(EgtError, match="id='x': field 'images': in-memory images cannot be written to JSONL"):
        write_pairs(_pairs(False) + bad, tmp_path / "out.jsonl")
    assert list(tmp_path.iterdir()) == []
