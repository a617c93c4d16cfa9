"""The plain column renderer (fleet-sized tables) and the row-per-line JSON writer."""

from __future__ import annotations

import json

import pytest

from certdoctor.render.columns import aligned
from certdoctor.render.json import dumps, dumps_rows


def test_columns_align_to_the_widest_cell_and_drop_trailing_spaces() -> None:
    lines = list(aligned(("id", "target", "labels"), [(1, "a.example", ""), (10, "b", "team=x")]))
    assert lines == [
        "id  target     labels",
        "1   a.example",
        "10  b          team=x",
    ]


def test_columns_escape_hostile_cells_and_count_wide_characters_twice() -> None:
    lines = list(aligned(("name", "x"), [("\x1b[31mred\u202e", "1"), ("日本", "2"), (None, "3")]))
    assert lines[1] == "\\x1b[31mred\\u202e  1"
    assert "\x1b" not in "".join(lines) and "\u202e" not in "".join(lines)
    # 日本 is four terminal cells wide: two spaces of padding to the 16-cell column, then the gap
    assert lines[2] == "日本" + " " * (len("\\x1b[31mred\\u202e") - 4) + "  2"
    assert lines[3] == " " * len("\\x1b[31mred\\u202e") + "  3"


def test_columns_refuse_a_row_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="row of 1 cells under 2 headers"):
        list(aligned(("a", "b"), [("x",)]))


def test_rows_document_is_the_same_json_with_one_row_per_line() -> None:
    doc = {"certdoctor": 1, "kind": "watch-status", "targets": [{"id": 1, "x": [1, "é\x1b"]}, {"id": 2}], "n": {}}
    text = dumps_rows(doc, "targets")
    assert json.loads(text) == doc
    lines = text.splitlines()
    assert lines[4] == '    {"id": 1, "x": [1, "\\u00e9\\u001b"]},'
    assert lines[5] == '    {"id": 2}'
    assert text.isascii()
    # an empty list, and a document without the key, are written exactly as dumps writes them
    assert dumps_rows({"kind": "k", "targets": []}, "targets") == dumps({"kind": "k", "targets": []})
    assert dumps_rows({"kind": "k"}, "targets") == dumps({"kind": "k"})
