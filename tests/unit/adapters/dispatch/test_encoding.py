"""Tests of adapters/dispatch/encoding.py: line splitting, declared and detected encodings, errors."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.dispatch.encoding import TextEncoding, codec_for, iter_text_lines
from ground.errors import MalformedInputError

CHINESE = ["白河变\t110kV", "卧龙Ⅰ线有功", "南阳供电公司"]


def lines_of(data: bytes, **options: object) -> list[tuple[int, str]]:
    return list(iter_text_lines(io.BytesIO(data), source_name="feed.txt", **options))  # type: ignore[arg-type]


def declared(first: bytes) -> str | None:
    return first.split(b"=", 1)[1].decode("ascii") if first.startswith(b"code=") else None


@pytest.mark.parametrize("codec", ["utf-8", "gbk", "gb18030"])
def test_undeclared_chinese_text_is_detected_in_each_encoding(codec: str) -> None:
    data = "\n".join(["ID,NAME", *CHINESE]).encode(codec)

    assert lines_of(data) == [(1, "ID,NAME"), *enumerate(CHINESE, start=2)]


def test_gb18030_four_byte_characters_are_detected() -> None:
    text = "𠮷家变电站\n€ 价格"

    assert [line for _, line in lines_of(text.encode("gb18030"))] == text.split("\n")


def test_decision_waits_for_the_first_non_ascii_line() -> None:
    ascii_head = b"".join(b"line %d\n" % n for n in range(5000))
    data = ascii_head + "白河变\n".encode("gbk")

    result = lines_of(data, chunk_size=1000)

    assert len(result) == 5001
    assert result[-1] == (5001, "白河变")


def test_utf8_bom_means_utf8_and_is_removed() -> None:
    data = b"\xef\xbb\xbf" + "名称\n白河变".encode()

    assert lines_of(data) == [(1, "名称"), (2, "白河变")]


def test_declaration_is_obeyed() -> None:
    data = b"code=GBK\n" + "白河变".encode("gbk")

    assert lines_of(data, declaration=declared) == [(1, "code=GBK"), (2, "白河变")]


def test_gb2312_declaration_reads_as_gbk() -> None:
    # 瑢 is in GBK but not in GB2312: producers that say GB2312 write code page 936.
    data = b"code=gb2312\n" + "瑢".encode("gbk")

    assert lines_of(data, declaration=declared)[1] == (2, "瑢")


def test_declared_utf8_but_gbk_bytes_is_an_error_naming_the_line() -> None:
    data = b"code=UTF-8\nplain\n" + "白河变".encode("gbk")

    with pytest.raises(
        MalformedInputError, match=r"feed\.txt:3: declared UTF-8 but line 3 is not valid UTF-8"
    ):
        lines_of(data, declaration=declared)


def test_declared_gbk_but_gb18030_only_character_is_an_error() -> None:
    data = b"code=GBK\n" + "𠮷".encode("gb18030")

    with pytest.raises(MalformedInputError, match="declared GBK but line 2 is not valid GBK"):
        lines_of(data, declaration=declared)


def test_bom_contradicting_the_declaration_is_an_error() -> None:
    data = b"\xef\xbb\xbfcode=GBK\n"

    with pytest.raises(MalformedInputError, match="byte-order mark but declares GBK"):
        lines_of(data, declaration=declared)


def test_unsupported_declaration_is_an_error() -> None:
    with pytest.raises(MalformedInputError, match="'Big5' is not supported"):
        lines_of(b"code=Big5\n", declaration=declared)


def test_detected_utf8_then_a_gbk_line_after_the_sample_is_an_error() -> None:
    data = "白河变\n".encode() + b"x" * 100 + b"\n" + "卧龙变\n".encode("gbk")

    with pytest.raises(
        MalformedInputError, match=r"detected UTF-8 from lines 1-2 but line 3 is not valid UTF-8"
    ):
        lines_of(data, sample_bytes=50)


def test_bytes_valid_in_neither_encoding_are_an_error() -> None:
    with pytest.raises(MalformedInputError, match="line 2 is not valid GB18030"):
        lines_of(b"ok\n\xff\xff\xff\n")


def test_nul_byte_means_binary_data() -> None:
    with pytest.raises(MalformedInputError, match=r"feed\.txt:3: NUL byte"):
        lines_of(b"a\nb\nc\x00d\n")


def test_overlong_line_is_an_error_before_it_is_buffered_whole() -> None:
    with pytest.raises(MalformedInputError, match=r"feed\.txt:2: line longer than 100 bytes"):
        lines_of(b"short\n" + b"y" * 1000, chunk_size=16, max_line_bytes=100)


def test_crlf_blank_lines_and_a_missing_final_newline() -> None:
    assert lines_of(b"a\r\n\r\nb\r") == [(1, "a"), (2, ""), (3, "b")]


def test_empty_stream_has_no_lines() -> None:
    assert lines_of(b"") == []


def test_codec_names_are_case_insensitive() -> None:
    assert [codec_for(name, source_name="f") for name in ("utf8", "GBK", "Gb18030", "CP936")] == [
        "utf-8",
        "gbk",
        "gb18030",
        "gbk",
    ]


line_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\n\r\x00"),
    max_size=30,
)


@given(
    lines=st.lists(line_text, min_size=1, max_size=20),
    codec=st.sampled_from(["utf-8", "gb18030"]),
    chunk_size=st.integers(min_value=1, max_value=64),
)
def test_lines_survive_any_chunking(lines: list[str], codec: str, chunk_size: int) -> None:
    data = "\n".join(lines).encode(codec)

    result = lines_of(data, chunk_size=chunk_size, declaration=lambda _: codec)

    expected = lines if lines[-1] else lines[:-1]
    assert result == list(enumerate(expected, start=1))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"code=gb2312\n" + "白河变".encode("gbk"), TextEncoding("GBK", "declared", "gb2312")),
        (b"\xef\xbb\xbf" + "名称\n".encode(), TextEncoding("UTF-8", "bom")),
        ("ID\n白河变\n".encode("gbk"), TextEncoding("GB18030", "detected")),
        ("ID\n白河变\n".encode(), TextEncoding("UTF-8", "detected")),
        (b"ID\n411300001\n", TextEncoding("ASCII", "detected")),
    ],
)
def test_the_listener_is_told_once_what_the_feed_is_read_as(data: bytes, expected: TextEncoding) -> None:
    heard: list[TextEncoding] = []

    lines_of(data, declaration=declared, on_encoding=heard.append)

    assert heard == [expected]


def test_the_encoding_is_told_before_the_first_decoded_line_so_a_failing_file_still_reports_it() -> None:
    heard: list[TextEncoding] = []
    stream = iter_text_lines(
        io.BytesIO(b"code=UTF-8\n" + "白河变".encode("gbk")),
        source_name="feed.txt",
        declaration=declared,
        on_encoding=heard.append,
    )

    with pytest.raises(MalformedInputError, match="declared UTF-8 but line 2"):
        list(stream)
    assert [item.describe() for item in heard] == ["UTF-8 (declared Code=UTF-8)"]


def test_encodings_describe_how_they_were_settled() -> None:
    assert [
        TextEncoding("GBK", "declared", "GBK").describe(),
        TextEncoding("UTF-8", "bom").describe(),
        TextEncoding("GB18030", "detected").describe(),
    ] == ["GBK (declared Code=GBK)", "UTF-8 (byte-order mark)", "GB18030 (detected)"]
