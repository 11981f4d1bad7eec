"""Tests of adapters/dispatch/cime.py: the shared sample, row and file errors, vertical form, rendering."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.dispatch.cime import (
    Block,
    BlockEnd,
    BlockStart,
    CimeItem,
    CimeRow,
    CimeRowError,
    Header,
    iter_cime,
    iter_cime_bytes,
    render_cime,
)
from ground.errors import MalformedInputError

SAMPLE = Path(__file__).parent / "data" / "cime_sample.txt"
TIME = "2026-11-20 00:15:00"
SAMPLE_HEADER = Header({"System": "D5000", "Version": "1.0", "Code": "UTF-8", "Data": "1.0", "Time": TIME})
LABELS = ("序号", "标识", "名称")


def parse(data: bytes | str) -> list[CimeItem]:
    raw = data.encode() if isinstance(data, str) else data
    return list(iter_cime(io.BytesIO(raw), source_name="model.cime"))


def rows(items: list[CimeItem]) -> list[CimeRow]:
    return [item for item in items if isinstance(item, CimeRow)]


def errors(items: list[CimeItem]) -> list[tuple[int, str]]:
    return [(item.line_no, item.reason) for item in items if isinstance(item, CimeRowError)]


def substation(line_no: int, num: str, mrid: str, name: str, x: str, y: str) -> CimeRow:
    values = {"Num": num, "mRID": mrid, "name": name, "type": "110kV", "x": x, "y": y}
    return CimeRow("Substation", "南阳", line_no, dict(values))


def feeder(
    line_no: int, num: str, mrid: str, name: str, station: str, current: str, ties: str | None
) -> CimeRow:
    values = {"Num": num, "mRID": mrid, "name": name, "substation": station, "ratedCurrent": current}
    return CimeRow("FeederPW", "南阳", line_no, {**values, "tieSwitches": ties})


def analog(line_no: int, num: str, mrid: str, name: str, value: str | None, quality: str) -> CimeRow:
    values = {"Num": num, "mRID": mrid, "name": name, "measurementType": "P", "value": value}
    return CimeRow("Analog", "南阳", line_no, {**values, "unit": "MW", "quality": quality, "time": TIME})


EXPECTED_SAMPLE: list[CimeItem] = [
    SAMPLE_HEADER,
    BlockStart(
        "Substation",
        "南阳",
        ("Num", "mRID", "name", "type", "x", "y"),
        (*LABELS, "厂站类型", "经度", "纬度"),
        2,
    ),
    substation(5, "1", "411300001", "白河变", "112.5301", "32.9907"),
    substation(6, "2", "411300002", "卧龙变", "112.4712", "33.0123"),
    BlockEnd("Substation", "南阳", 7),
    BlockStart(
        "FeederPW",
        "南阳",
        ("Num", "mRID", "name", "substation", "ratedCurrent", "tieSwitches"),
        (*LABELS, "所属厂站", "允许电流A", "联络开关数"),
        8,
    ),
    feeder(11, "1", "411300101", "白河Ⅰ线", "411300001", "485", "2"),
    feeder(12, "2", "411300102", "白河Ⅱ线", "411300001", "485", "1"),
    feeder(13, "3", "411300201", "卧龙Ⅰ线", "411300002", "400", None),
    BlockEnd("FeederPW", "南阳", 14),
    BlockStart(
        "Analog",
        "南阳",
        ("Num", "mRID", "name", "measurementType", "value", "unit", "quality", "time"),
        (*LABELS, "量测类型", "值", "单位", "质量码", "时标"),
        15,
    ),
    analog(18, "1", "411300101-P", "白河Ⅰ线有功", "4.62", "0"),
    analog(19, "2", "411300102-P", "白河Ⅱ线有功", "3.18", "0"),
    analog(20, "3", "411300201-P", "卧龙Ⅰ线有功", None, "8"),
    BlockEnd("Analog", "南阳", 21),
]


def test_shared_sample_parses_to_exactly_the_expected_items() -> None:
    assert parse(SAMPLE.read_bytes()) == EXPECTED_SAMPLE


def _sample_text(code: str | None) -> str:
    text = SAMPLE.read_text(encoding="utf-8")
    return text.replace("Code=UTF-8", f"Code={code}") if code else text.replace(" Code=UTF-8", "")


@pytest.mark.parametrize(
    ("codec", "code"),
    [
        ("gbk", "GBK"),
        ("gbk", "gb2312"),
        ("gb18030", "GB18030"),
        ("gbk", None),
        ("gb18030", None),
        ("utf-8", None),
    ],
)
def test_gbk_and_gb18030_files_parse_like_the_utf8_one(codec: str, code: str | None) -> None:
    items = parse(_sample_text(code).encode(codec))

    expected_attributes = {key: value for key, value in SAMPLE_HEADER.attributes.items() if key != "Code"}
    if code:
        expected_attributes["Code"] = code
    assert items[0] == Header(expected_attributes)
    assert items[1:] == EXPECTED_SAMPLE[1:]


def test_file_declared_utf8_but_encoded_gbk_is_rejected_with_the_line() -> None:
    with pytest.raises(
        MalformedInputError, match=r"model\.cime:2: declared UTF-8 but line 2 is not valid UTF-8"
    ):
        parse(SAMPLE.read_text(encoding="utf-8").encode("gbk"))


def test_bom_is_accepted() -> None:
    assert parse(b"\xef\xbb\xbf" + SAMPLE.read_bytes()) == EXPECTED_SAMPLE


def test_row_errors_do_not_stop_the_good_rows_around_them() -> None:
    text = "\n".join(
        [
            "<! Code=UTF-8 !>",
            "#\t0\torphan",
            "<Breaker::南阳>",
            "@\tid\tname\tstate",
            "#\t1\t白河开关\t1",
            "#\t2\tshort",
            "#\t3\t'unterminated\t0",
            "#\t4\t'no space'after\t0",
            '#\t5\t"卧龙 开关"\t0',
            "what is this",
            "</Breaker::卧龙>",
            "#\t6\tafter\t1",
            "<Breaker::南阳>",
            "@\tid\tname\tstate",
            "#\t7\t白河二\t-",
            "</Breaker::南阳>",
        ]
    )

    items = parse(text)

    assert errors(items) == [
        (2, "data outside any block"),
        (6, "2 fields, but the column line (line 4) has 3"),
        (7, "unbalanced ' quote in field \"'unterminated\""),
        (8, "unbalanced ' quote in field \"'no space'after\""),
        (10, "not a CIM/E line (expected <, </, @, //, # or $)"),
        (
            11,
            "closing tag does not match the open block <Breaker::南阳> (line 3), expected </Breaker::南阳>; "
            "that block ends here",
        ),
        (12, "data outside any block"),
    ]
    assert rows(items) == [
        CimeRow("Breaker", "南阳", 5, {"id": "1", "name": "白河开关", "state": "1"}),
        CimeRow("Breaker", "南阳", 9, {"id": "5", "name": "卧龙 开关", "state": "0"}),
        CimeRow("Breaker", "南阳", 15, {"id": "7", "name": "白河二", "state": None}),
    ]
    assert [item.line_no for item in items if isinstance(item, BlockEnd)] == [11, 16]


def test_row_error_carries_the_raw_line_and_becomes_a_parkable_error() -> None:
    items = parse("<! !>\n<A::b>\n@\tx\n#  1  2\n</A::b>\n")

    (error,) = [item for item in items if isinstance(item, CimeRowError)]
    assert error.raw_line == "#  1  2"
    assert str(error.as_error("model.cime")) == (
        "model.cime:4: 2 fields, but the column line (line 3) has 1; a value that holds spaces must be "
        "quoted, or the fields separated by tabs: '#  1  2'"
    )


def test_block_opened_inside_an_open_block_ends_the_open_one() -> None:
    items = parse("<! !>\n<A::x>\n@\tk\n#\t1\n<B::y>\n@\tk\n#\t2\n</B::y>\n")

    assert errors(items) == [
        (5, "block <A::x> opened at line 2 was not closed before this block; it ends here")
    ]
    assert [(type(item).__name__, getattr(item, "line_no", None)) for item in items[1:]] == [
        ("BlockStart", 2),
        ("CimeRow", 4),
        ("CimeRowError", 5),
        ("BlockEnd", 5),
        ("BlockStart", 5),
        ("CimeRow", 7),
        ("BlockEnd", 8),
    ]


def test_duplicate_columns_make_the_block_rows_errors() -> None:
    items = parse("<! !>\n<A::x>\n@\tk\tk\n#\t1\t2\n</A::x>\n")

    assert errors(items) == [
        (3, "duplicate column names ['k']; the rows of this block cannot be read"),
        (4, "block <A::x> has no usable column line (line 3)"),
    ]
    assert rows(items) == []


def test_label_count_mismatch_drops_the_labels_only() -> None:
    items = parse("<! !>\n<A::x>\n@\tk\tv\n//\t键\n#\t1\t2\n</A::x>\n")

    assert errors(items) == [(4, "1 labels for 2 columns; labels dropped")]
    assert BlockStart("A", "x", ("k", "v"), None, 2) in items
    assert rows(items) == [CimeRow("A", "x", 5, {"k": "1", "v": "2"})]


def test_data_row_before_the_column_line_is_a_row_error() -> None:
    items = parse("<! !>\n<A::x>\n#\t1\n@\tk\n#\t2\n</A::x>\n")

    assert errors(items) == [(3, "data row before the column line of block <A::x>")]
    assert rows(items) == [CimeRow("A", "x", 5, {"k": "2"})]


CLOSING_LINES = {7: 5, 14: 10}  # closing tag line of the sample -> items up to its BlockEnd


@pytest.mark.parametrize("kept_lines", [n for n in range(2, 21) if n not in CLOSING_LINES])
def test_file_cut_inside_a_block_is_truncated(kept_lines: int) -> None:
    cut = b"\n".join(SAMPLE.read_bytes().split(b"\n")[:kept_lines])

    with pytest.raises(
        MalformedInputError, match=rf"model\.cime:{kept_lines}: the file ends inside block <\w+::南阳>"
    ):
        parse(cut)


@pytest.mark.parametrize(("kept_lines", "item_count"), CLOSING_LINES.items())
def test_file_cut_right_after_a_closing_tag_is_well_formed(kept_lines: int, item_count: int) -> None:
    cut = b"\n".join(SAMPLE.read_bytes().split(b"\n")[:kept_lines])

    assert parse(cut) == EXPECTED_SAMPLE[:item_count]


def test_file_cut_mid_line_is_truncated() -> None:
    data = SAMPLE.read_bytes()
    cut = data[: data.index("白河Ⅱ线有功".encode()) + len("白河".encode())]

    with pytest.raises(
        MalformedInputError, match=r"model\.cime:19: the file ends inside block <Analog::南阳>"
    ):
        parse(cut)


def test_file_cut_mid_character_fails_to_decode() -> None:
    data = SAMPLE.read_bytes()
    cut = data[: data.index("白河Ⅱ线有功".encode()) + 1]

    with pytest.raises(
        MalformedInputError, match=r"model\.cime:19: declared UTF-8 but line 19 is not valid UTF-8"
    ):
        parse(cut)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"model\.cime: empty file: no CIM/E header"),
        (b"\n\n", r"empty file: no CIM/E header"),
        (
            b"<Substation::A>\n@\tx\n</Substation::A>\n",
            r"model\.cime:1: expected the CIM/E header '<! ... !>'",
        ),
        (b"<! System=D5000 Code=UTF-8\n", r"model\.cime:1: expected the CIM/E header"),
        (b"<! System='D5000 !>\n", r"model\.cime:1: malformed header: cannot read a key=value attribute"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"NUL byte; binary data"),
        (b"\xff\xfe\xfd\xfc garbage \xfa\xfb", r"line 1 is not valid GB18030"),
    ],
)
def test_unparseable_files_raise(data: bytes, message: str) -> None:
    with pytest.raises(MalformedInputError, match=message):
        parse(data)


def test_dollar_lines_and_stray_comments_are_skipped_anywhere() -> None:
    text = "\n".join(
        [
            "$ exported by D5000",
            "// model of 南阳",
            "<! Code=UTF-8 !>",
            "$ first block",
            "<A::x>",
            "$ between tag and columns",
            "@\tk\tv",
            "$ between columns and labels",
            "//\t键\t值",
            "#\t1\t白河",
            "$\t2\tnot a row",
            "// a remark, not labels",
            "#\t3\t卧龙",
            "</A::x>",
            "$ end",
        ]
    )

    items = parse(text)

    assert items == [
        Header({"Code": "UTF-8"}),
        BlockStart("A", "x", ("k", "v"), ("键", "值"), 5),
        CimeRow("A", "x", 10, {"k": "1", "v": "白河"}),
        CimeRow("A", "x", 13, {"k": "3", "v": "卧龙"}),
        BlockEnd("A", "x", 14),
    ]


def test_quoting_and_empty_markers() -> None:
    text = "<! !>\n<A>\n@ a b c d e f\n#   'null'  NULL  \"-\"  ''  \"it's 1 m\"  O'Brien\n</A>\n"

    assert rows(parse(text)) == [
        CimeRow("A", None, 4, {"a": "null", "b": None, "c": "-", "d": "", "e": "it's 1 m", "f": "O'Brien"})
    ]


def test_tab_separated_rows_keep_the_inner_spaces_of_unquoted_names() -> None:
    text = "\n".join(
        [
            "<! System=D5000 Code=GBK !>",
            "<Substation::南阳>",
            "@\tNum\tmRID\tname\ttype",
            "#\t1\t411300001\t白河 变\t110kV",
            "#\t2\t411300002 \t  卧龙  东 变 \t110kV",
            "#\t3\t411300003\t'独山 变'\tnull",
            "#\t4\t411300004\t\t光武变\t\t35kV",
            "# 5 411300005 '宛城 变' 10kV",
            "</Substation::南阳>",
        ]
    )

    items = parse(text.encode("gbk"))

    assert errors(items) == []
    assert [row.values["name"] for row in rows(items)] == [
        "白河 变",
        "卧龙  东 变",
        "独山 变",
        "光武变",
        "宛城 变",
    ]
    assert rows(items)[1].values == {"Num": "2", "mRID": "411300002", "name": "卧龙  东 变", "type": "110kV"}
    assert rows(items)[2].values["type"] is None


def test_a_space_in_a_value_of_a_space_separated_row_is_never_guessed_around() -> None:
    text = (
        "<! !>\n<Substation::南阳>\n@ Num mRID name type\n# 1 411300001 白河 变 110kV\n</Substation::南阳>\n"
    )

    assert errors(parse(text)) == [
        (
            4,
            "5 fields, but the column line (line 3) has 4; a value that holds spaces must be quoted, "
            "or the fields separated by tabs",
        )
    ]


def test_a_tab_separated_row_missing_a_field_is_an_error_although_its_words_match_the_columns() -> None:
    # Split at spaces too, the six words would fill the six columns with shifted values.
    text = "\n".join(
        [
            "<! !>",
            "<Substation::南阳>",
            "@\tNum\tmRID\tname\ttype\tx\ty",
            "#\t1\t411300001\t白河 变\t110kV\t112.5301",
            "#\t2\t411300002\t卧龙 变\t110kV\t112.4712\t33.0123",
            "</Substation::南阳>",
        ]
    )

    items = parse(text)

    assert errors(items) == [
        (
            4,
            "5 fields, but the column line (line 3) has 6; the line separates its fields by tabs, "
            "so its spaces belong to the values",
        )
    ]
    assert [row.values["name"] for row in rows(items)] == ["卧龙 变"]


def test_a_one_column_row_after_a_tab_keeps_its_spaces_and_a_row_mixing_separators_is_refused() -> None:
    text = "<! !>\n<A>\n@\tname\n#\t白河 变\n</A>\n<B>\n@ a b\n#\t1 2\n</B>\n"

    items = parse(text)

    assert [row.values for row in rows(items)] == [{"name": "白河 变"}]
    assert errors(items) == [
        (
            8,
            "1 fields, but the column line (line 7) has 2; the line separates its fields by tabs, "
            "so its spaces belong to the values",
        )
    ]


def test_vertical_rows_separated_by_tabs_keep_spaces_in_values() -> None:
    text = "<! !>\n<Substation::南阳>\n@@\n#\t1\tmRID\t411300001\n#\t2\tname\t白河 变\n</Substation::南阳>\n"

    assert rows(parse(text)) == [CimeRow("Substation", "南阳", 4, {"mRID": "411300001", "name": "白河 变"})]


def test_block_tag_attributes_and_entityless_blocks() -> None:
    items = parse("<! !>\n<Analog type=全数 date='2026-11-20'>\n@ k\n</Analog>\n")

    assert items[1] == BlockStart(
        "Analog", None, ("k",), None, 2, attributes={"type": "全数", "date": "2026-11-20"}
    )


def test_vertical_form_with_order_numbers_is_one_record() -> None:
    text = "\n".join(
        [
            "<! !>",
            "<Substation::南阳>",
            "@@\t顺序\t属性名\t属性值",
            "//\tNo\tName\tValue",
            "#\t1\tmRID\t411300001",
            "#\t2\tname\t白河变",
            "#\t3\tvoltage\tnull",
            "#\t4\tremark\t'主变 2 台'",
            "</Substation::南阳>",
        ]
    )

    assert parse(text)[1:] == [
        BlockStart("Substation", "南阳", ("mRID", "name", "voltage", "remark"), None, 2, vertical=True),
        CimeRow(
            "Substation",
            "南阳",
            5,
            {"mRID": "411300001", "name": "白河变", "voltage": None, "remark": "主变 2 台"},
        ),
        BlockEnd("Substation", "南阳", 9),
    ]


def test_vertical_form_repeated_name_starts_the_next_record() -> None:
    text = "\n".join(
        [
            "<! !>",
            "<Breaker::南阳>",
            "@@",
            "#\tmRID\tB1",
            "#\tname\t白河开关",
            "#\tstate\t1",
            "#\tmRID\tB2",
            "#\tstate\t0",
            "#\tcolour\tred",
            "#\tmRID\tB3",
            "#\tonly-two",
            "#\tname\t卧龙开关",
            "</Breaker::南阳>",
        ]
    )

    items = parse(text)

    assert items[1] == BlockStart("Breaker", "南阳", ("mRID", "name", "state"), None, 2, vertical=True)
    assert errors(items) == [
        (9, "attribute 'colour' is not among the block's columns ['mRID', 'name', 'state']"),
        (11, "1 fields; a vertical row is '# [order] name value'"),
    ]
    assert rows(items) == [
        CimeRow("Breaker", "南阳", 4, {"mRID": "B1", "name": "白河开关", "state": "1"}),
        CimeRow("Breaker", "南阳", 7, {"mRID": "B2", "name": None, "state": "0"}),
        CimeRow("Breaker", "南阳", 10, {"mRID": "B3", "name": "卧龙开关", "state": None}),
    ]


def test_render_writes_tabs_quotes_and_null() -> None:
    header = Header({"System": "D5000", "Code": "UTF-8", "Time": TIME})
    block = Block(
        "Analog",
        "南阳",
        ("mRID", "name", "value", "time"),
        [
            {"mRID": "1-P", "name": "白河Ⅰ线 有功", "value": None, "time": TIME},
            {"mRID": "2-P", "name": "-", "value": "", "time": "it's"},
        ],
        labels=("标识", "名称", "值", "时标"),
    )

    assert render_cime(header, [block]) == (
        "<! System=D5000 Code=UTF-8 Time='2026-11-20 00:15:00' !>\n"
        "<Analog::南阳>\n"
        "@\tmRID\tname\tvalue\ttime\n"
        "//\t标识\t名称\t值\t时标\n"
        "#\t1-P\t'白河Ⅰ线 有功'\tnull\t'2026-11-20 00:15:00'\n"
        "#\t2-P\t'-'\t''\tit's\n"
        "</Analog::南阳>\n"
    )


def test_render_vertical_block_parses_back() -> None:
    block = Block("Substation", "南阳", ("mRID", "name"), ({"mRID": "1", "name": "白河变"},), vertical=True)

    text = render_cime(Header({}), [block])

    assert text == (
        "<! !>\n<Substation::南阳>\n@@\tNum\tname\tvalue\n#\t1\tmRID\t1\n#\t2\tname\t白河变\n"
        "</Substation::南阳>\n"
    )
    assert rows(parse(text)) == [CimeRow("Substation", "南阳", 4, {"mRID": "1", "name": "白河变"})]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (Block("A", "x", ("k",), [{"k": "a 'b\" c"}]), "needs quotes but holds both quote characters"),
        (Block("A", "x", ("k",), [{"k": "two\nlines"}]), "holds a line break or NUL"),
        (Block("A", "x", ("k",), [{"other": "1"}]), r"row keys \['other'\] are not among its columns"),
        (Block("A", "x", ("k", "k"), []), "duplicate column names"),
        (Block("A", "x", ("k",), [], labels=("a", "b")), "2 labels for 1 columns"),
        (Block("A::B", "x", ("k",), []), "class name 'A::B' cannot be written"),
        (Block("A", "x y", ("k",), []), "entity name 'x y' cannot be written"),
        (Block("A", "x", (), [{}], vertical=True), "a vertical block with rows needs columns"),
        (Block("A", "x", ("k",), [], attributes={"a b": "1"}), "attribute name 'a b' cannot be written"),
    ],
)
def test_render_refuses_what_cime_cannot_hold(block: Block, message: str) -> None:
    with pytest.raises(MalformedInputError, match=message):
        render_cime(Header({}), [block])


def test_rendered_bytes_follow_the_declared_code() -> None:
    block = Block("Substation", "南阳", ("name",), [{"name": "白河变"}])

    data = b"".join(iter_cime_bytes(Header({"Code": "GBK"}), [block]))

    assert "白河变".encode("gbk") in data
    assert rows(parse(data)) == [CimeRow("Substation", "南阳", 4, {"name": "白河变"})]


def test_rendered_bytes_refuse_characters_the_code_cannot_encode() -> None:
    block = Block("Substation", "南阳", ("name",), [{"name": "𠮷家变"}])

    with pytest.raises(MalformedInputError, match="cannot be encoded as GBK"):
        b"".join(iter_cime_bytes(Header({"Code": "GBK"}), [block]))


def collect(items: list[CimeItem]) -> tuple[Header, list[Block]]:
    """Rebuild Header and Blocks from parsed items, failing on any row error."""
    assert not errors(items), errors(items)
    header = items[0]
    assert isinstance(header, Header)
    blocks: list[Block] = []
    current: list[dict[str, str | None]] = []
    start: BlockStart | None = None
    for item in items[1:]:
        if isinstance(item, BlockStart):
            start, current = item, []
        elif isinstance(item, CimeRow):
            current.append(item.values)
        elif isinstance(item, BlockEnd):
            assert start is not None
            blocks.append(
                Block(
                    start.class_name,
                    start.entity,
                    start.columns,
                    tuple(current),
                    start.labels,
                    start.vertical,
                    start.attributes,
                )
            )
    return header, blocks


HAN = "白河卧龙变电站线南阳有功开关𠮷"
name_chars = st.sampled_from("abcXYZ_09-." + HAN)
names = st.text(name_chars, min_size=1, max_size=8)
texts = st.text(
    st.one_of(
        st.sampled_from(" \t'\"-" + HAN),
        st.characters(exclude_categories=("Cs", "Cc")),
    ),
    max_size=12,
).filter(
    lambda text: not ("'" in text and '"' in text and (" " in text or "\t" in text or text[:1] in "'\""))
)
values = st.one_of(st.none(), st.sampled_from(["null", "NULL", "-", "", " ", "'x'"]), texts)
attribute_values = texts.filter(lambda text: not ("'" in text and '"' in text))


@st.composite
def blocks(draw: st.DrawFn) -> Block:
    vertical = draw(st.booleans())
    columns = tuple(draw(st.lists(texts, min_size=1 if vertical else 0, max_size=5, unique=True)))
    row_list = draw(
        st.lists(
            st.fixed_dictionaries({column: values for column in columns}),
            min_size=1 if vertical else 0,
            max_size=4,
        )
    )
    labels = None if vertical else draw(st.one_of(st.none(), st.tuples(*[texts for _ in columns])))
    return Block(
        draw(names),
        draw(st.one_of(st.none(), names)),
        columns,
        tuple(row_list),
        labels,
        vertical,
        draw(st.dictionaries(names, attribute_values, max_size=2)),
    )


headers = st.dictionaries(
    names.filter(lambda name: name.lower() != "code"), attribute_values, max_size=4
).map(Header)


@settings(max_examples=150, deadline=None)
@given(header=headers, block_list=st.lists(blocks(), max_size=4))
def test_parse_of_render_is_identity(header: Header, block_list: list[Block]) -> None:
    data = render_cime(header, block_list).encode("utf-8")

    assert collect(parse(data)) == (header, block_list)


# What a producer that separates fields by tabs and never quotes can write: no tab, line break or NUL,
# no leading or trailing space, no leading quote, and not an empty marker.
unquoted_texts = st.text(
    st.one_of(st.sampled_from(" 白河 变'\"-"), st.characters(exclude_categories=("Cs", "Cc", "Zs"))),
    min_size=1,
    max_size=12,
).filter(
    lambda text: text == text.strip(" ") and text[0] not in "'\"" and text != "-" and text.lower() != "null"
)


@settings(max_examples=150, deadline=None)
@given(
    columns=st.lists(names, min_size=1, max_size=5, unique=True),
    data=st.data(),
)
def test_tab_separated_unquoted_rows_parse_to_their_values(columns: list[str], data: st.DataObject) -> None:
    row_list = data.draw(
        st.lists(st.lists(unquoted_texts, min_size=len(columns), max_size=len(columns)), max_size=4)
    )
    lines = ["<! Code=GB18030 !>", "<Feeder::南阳>", "@\t" + "\t".join(columns)]
    lines += ["#\t" + "\t".join(row) for row in row_list]
    lines.append("</Feeder::南阳>")

    items = parse(("\n".join(lines) + "\n").encode("gb18030"))

    assert errors(items) == []
    assert [row.values for row in rows(items)] == [dict(zip(columns, row, strict=True)) for row in row_list]


MARKERS = ("<!", "!>", "<", ">", "</", "::", "@", "@@", "//", "#", "$", "=")
FILLERS = ("'", '"', " ", "\t", "\n", "A", "b", "null", "-", "Code=GBK", "白", "\xff", "\x00")
cime_pieces = st.sampled_from(MARKERS + FILLERS)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(cime_pieces, max_size=40))
def test_any_input_gives_items_or_malformed_input_error(parts: list[str]) -> None:
    data = ("<! Code=UTF-8 !>\n" + "".join(parts)).encode("utf-8", "surrogateescape")

    try:
        items = parse(data)
    except MalformedInputError:
        return
    assert isinstance(items[0], Header)
    assert all(isinstance(item, BlockStart | CimeRow | BlockEnd | CimeRowError) for item in items[1:])


class GeneratedStream:
    """A binary stream fed by a generator of byte chunks, so no file of that size ever exists."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            return self._buffer + b"".join(self._chunks)
        if not self._buffer:
            self._buffer = next(self._chunks, b"")
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        return taken


ROWS_PER_BATCH = 1000
ROW_BATCH = "".join(
    f"#\t{n}\t4113{n:08d}-P\t线路{n}有功\t{n % 997 / 10}\tnull\t'{TIME}'\n" for n in range(ROWS_PER_BATCH)
).encode()


def generated_file(row_count: int) -> Iterator[bytes]:
    yield "<! System=D5000 Code=UTF-8 !>\n<Analog::南阳>\n@\tNum\tmRID\tname\tvalue\tquality\ttime\n".encode()
    for _ in range(row_count // ROWS_PER_BATCH):
        yield ROW_BATCH
    yield "</Analog::南阳>\n".encode()


def peak_memory_while_parsing(row_count: int) -> tuple[int, int]:
    tracemalloc.start()
    try:
        parsed = 0
        for item in iter_cime(GeneratedStream(generated_file(row_count)), source_name="generated.cime"):
            if isinstance(item, CimeRow):
                parsed += 1
            elif isinstance(item, CimeRowError):
                raise AssertionError(item)
        return parsed, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_parser_memory_does_not_grow_with_the_number_of_rows() -> None:
    small_rows, small_peak = peak_memory_while_parsing(20_000)
    large_rows, large_peak = peak_memory_while_parsing(200_000)

    assert (small_rows, large_rows) == (20_000, 200_000)
    # Ten times the rows; keeping them would take ten times the memory (about 100 MB here).
    assert large_peak < small_peak * 1.5
    assert large_peak < 2 * 1024 * 1024
