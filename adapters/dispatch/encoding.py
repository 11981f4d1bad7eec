"""Streams a legacy text feed (UTF-8, GBK or GB18030) from a binary file object as numbered, decoded lines.

Lines are split on the byte 0x0A before decoding. That is exact for all three encodings: 0x0A never
occurs inside a multi-byte character of UTF-8, GBK or GB18030 (their trail bytes are 0x30-0x39 or
0x40 and above), so each line decodes on its own, memory stays bounded by the longest line, and a
decoding failure is reported with its line number. CRLF reads as LF.

Which encoding decodes the lines:

1. A UTF-8 byte-order mark means UTF-8 (the mark is dropped).
2. Otherwise a declaration, when the format has one (CIM/E's ``Code=`` in its first line), is obeyed
   strictly. GB2312 and CP936 are read as GBK: producers that write either label emit Windows code
   page 936, which is GBK. A mark that contradicts the declaration, or an unsupported name, is an error.
3. Otherwise the encoding is detected. Lines made only of ASCII bytes read the same in all three
   encodings, so the decision waits for the first line with a non-ASCII byte. From that line on, up to
   ``sample_bytes`` of lines are held back and decoded as strict UTF-8: if they all decode, the feed is
   UTF-8, else GB18030 (a superset of GBK and GB2312). A stray GBK sequence that happens to be valid
   UTF-8 is short, while real Chinese text in GBK almost never forms valid UTF-8 over a few kilobytes.

Any line that the chosen encoding cannot decode, a NUL byte (binary data, not text) or a line longer
than ``max_line_bytes`` raises MalformedInputError naming the file and the line: a wrong encoding
garbles every later line too, so it is a problem of the whole file, not of one record.

A caller that reports what a file was read as passes ``on_encoding``: it is told the TextEncoding once,
as soon as it is settled (before the first line it decodes; for a file of ASCII only, at its end).
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from ground.errors import MalformedInputError

UTF8_BOM = codecs.BOM_UTF8

_CODECS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "gbk": "gbk",
    "gb2312": "gbk",
    "cp936": "gbk",
    "gb18030": "gb18030",
}
_DISPLAY = {"utf-8": "UTF-8", "gbk": "GBK", "gb18030": "GB18030"}

EncodingSource = Literal["declared", "bom", "detected"]


@dataclass(frozen=True, slots=True)
class TextEncoding:
    """What a feed was read as, and how that was settled.

    name: UTF-8, GBK or GB18030; ASCII when nothing was declared and the feed holds ASCII bytes only
    (it reads the same in all three). declared: the name as the file wrote it, when it declared one.
    """

    name: str
    source: EncodingSource
    declared: str | None = None

    def describe(self) -> str:
        """One line for an operator, e.g. 'GBK (declared Code=gb2312)' or 'GB18030 (detected)'."""
        if self.source == "declared":
            return f"{self.name} (declared Code={self.declared})"
        if self.source == "bom":
            return f"{self.name} (byte-order mark)"
        return f"{self.name} (detected)"


EncodingListener = Callable[[TextEncoding], None]


class BinaryReader(Protocol):
    """A binary file object as far as the readers need it: files opened 'rb', BytesIO, sockets' makefile."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to size bytes; b"" at the end."""
        ...


def codec_for(declared: str, *, source_name: str) -> str:
    """The Python codec for a declared encoding name (case-insensitive); unsupported names are errors."""
    codec = _CODECS.get(declared.strip().lower())
    if codec is None:
        supported = ", ".join(sorted({_DISPLAY[c] for c in _CODECS.values()} | {"GB2312"}))
        raise MalformedInputError(
            f"{source_name}: declared encoding {declared!r} is not supported (supported: {supported})"
        )
    return codec


def iter_text_lines(
    stream: BinaryReader,
    *,
    source_name: str,
    declaration: Callable[[bytes], str | None] | None = None,
    chunk_size: int = 64 * 1024,
    sample_bytes: int = 64 * 1024,
    max_line_bytes: int = 1024 * 1024,
    on_encoding: EncodingListener | None = None,
) -> Iterator[tuple[int, str]]:
    """Yield (line number, text without the line break) for every line, blank ones included.

    declaration: reads the declared encoding name from the first line's bytes (BOM removed), or None.
    on_encoding: told once what the feed is read as (see the module docstring).
    """
    tell = on_encoding or _ignore
    raw = _iter_byte_lines(stream, source_name=source_name, chunk_size=chunk_size, max_line=max_line_bytes)
    first = next(raw, None)
    if first is None:
        return
    has_bom = first.startswith(UTF8_BOM)
    if has_bom:
        first = first[len(UTF8_BOM) :]
    declared = declaration(first) if declaration is not None else None
    lines = itertools.chain((first,), raw)

    if declared is not None:
        codec = codec_for(declared, source_name=source_name)
        tell(TextEncoding(_DISPLAY[codec], "declared", declared))
        if has_bom and codec != "utf-8":
            raise MalformedInputError(
                f"{source_name}:1: the file starts with a UTF-8 byte-order mark but declares {declared}"
            )
        yield from _decode_all(lines, 1, codec, source_name, f"declared {declared} but")
    elif has_bom:
        tell(TextEncoding("UTF-8", "bom"))
        yield from _decode_all(lines, 1, "utf-8", source_name, "UTF-8 byte-order mark but")
    else:
        yield from _detect_and_decode(lines, source_name, sample_bytes, tell)


def _ignore(encoding: TextEncoding) -> None:
    """The listener of callers that do not ask what a feed was read as."""


def _iter_byte_lines(
    stream: BinaryReader, *, source_name: str, chunk_size: int, max_line: int
) -> Iterator[bytes]:
    """Split the stream into lines without their LF or CRLF, checking each chunk for NUL bytes."""
    done = 0
    pending = b""
    while chunk := stream.read(chunk_size):
        if pending:
            chunk = pending + chunk
        nul = chunk.find(b"\x00")
        if nul >= 0:
            line = done + chunk.count(b"\n", 0, nul) + 1
            raise MalformedInputError(f"{source_name}:{line}: NUL byte; binary data, not text")
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n")
        parts = chunk.split(b"\n")
        pending = parts.pop()
        if len(chunk) > max_line:
            for offset, part in enumerate(parts, start=1):
                _check_length(part, done + offset, source_name, max_line)
            _check_length(pending, done + len(parts) + 1, source_name, max_line)
        done += len(parts)
        yield from parts
    if pending:
        yield pending[:-1] if pending.endswith(b"\r") else pending


def _check_length(line: bytes, number: int, source_name: str, max_line: int) -> None:
    if len(line) > max_line:
        raise MalformedInputError(
            f"{source_name}:{number}: line longer than {max_line} bytes; not a line-oriented text file"
        )


def _decode_all(
    lines: Iterator[bytes], first_number: int, codec: str, source_name: str, premise: str
) -> Iterator[tuple[int, str]]:
    for number, data in enumerate(lines, start=first_number):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as exc:
            raise _decode_error(exc, data, codec, number, source_name, premise) from exc
        yield number, text


def _decode_error(
    exc: UnicodeDecodeError, data: bytes, codec: str, number: int, source_name: str, premise: str
) -> MalformedInputError:
    return MalformedInputError(
        f"{source_name}:{number}: {premise} line {number} is not valid {_DISPLAY[codec]} "
        f"(byte {exc.start + 1}: {data[exc.start : exc.start + 4]!r})"
    )


def _detect_and_decode(
    lines: Iterator[bytes], source_name: str, sample_bytes: int, tell: EncodingListener
) -> Iterator[tuple[int, str]]:
    for number, data in enumerate(lines, start=1):
        if data.isascii():
            yield number, data.decode("ascii")
            continue
        held = [data]
        size = len(data)
        for later in lines:
            held.append(later)
            size += len(later)
            if size >= sample_bytes:
                break
        codec = "utf-8" if all(_is_utf8(chunk) for chunk in held) else "gb18030"
        tell(TextEncoding(_DISPLAY[codec], "detected"))
        premise = f"detected {_DISPLAY[codec]} from lines {number}-{number + len(held) - 1} but"
        yield from _decode_all(iter(held), number, codec, source_name, premise)
        yield from _decode_all(lines, number + len(held), codec, source_name, premise)
        return
    tell(TextEncoding("ASCII", "detected"))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
