"""CIM/E ("E language", Q/GDW 215-2008, GB/T 30149-2019) model files: a streaming parser and a renderer.

Syntax read here (one construct per line; spaces and tabs around a line are ignored, blank lines too)::

    <! System=D5000 Code=UTF-8 Time='2026-11-20 00:15:00' !>    header: key=value attributes
    <Substation::南阳>                                          block start: <Class::Entity attr=value ...>
    @    Num   mRID        name                                 column line (horizontal form)
    //   序号  标识        名称                                 labels: the // line right after @ or @@
    #    1     411300001   白河变                               data row
    </Substation::南阳>                                         block end

- Fields are separated by runs of spaces or tabs. A line that separates its fields by tabs (a tab
  precedes one of them: ``#\t1\t白河 变``, as D5000 writes) is split at tabs only, spaces around a tab
  ignored, so a value there may hold spaces without quotes. In a line separated by spaces only, a value
  with spaces must be quoted. A row whose field count differs from the column count is an error either
  way; values are never shifted or merged to make it fit.
  A field that starts with ' or " runs to the next same quote and is taken literally (so '' is the
  empty string and 'null' the word null); a quote elsewhere in a field is an ordinary character.
  Unquoted ``null`` (any case) and ``-`` in a data row mean empty (None). Column names and labels are
  always literal.
- The entity part (``::Entity``) of a block tag is optional; ``None`` when absent.
- Vertical form: a block whose column line starts with ``@@`` lists one attribute per row, as
  ``# name value`` or ``# order name value`` (the order number is ignored; the words after ``@@`` only
  name these layout columns and are ignored too, as is a // line after them). The rows of a block
  describe one record; a name that repeats within the block starts the next record, so one block may
  hold several records. The block's columns are the names of its first record, in order, so its
  BlockStart comes once that record is complete; later records lacking a name get None for it.
- ``$`` lines are skipped wherever they occur; producers use them for remarks and they carry no data.
  A ``//`` line anywhere else than right after a column line is a comment and is skipped too.
- The header must be the first line for its ``Code=`` to choose the decoding (see encoding.py); blank,
  ``$`` and ``//`` lines before it are tolerated, the encoding is then detected. ``on_encoding`` is told
  which it was.

The stream of items is: Header, then per block BlockStart, CimeRow..., BlockEnd, with CimeRowError
items where a line is wrong. Only one block's header state (and, in vertical form, one record) is held.

Row-level problems yield a CimeRowError and parsing carries on with the next line:
a data row with the wrong number of fields; a data row, column line or closing tag outside a block; a
data row before the block's column line; an unterminated quote or text glued to a closing quote; a
second column line; duplicate column names (the block's rows then fail too, none can be trusted);
a label count that differs from the column count (the labels are dropped); a vertical row without two
or three fields, or naming an attribute that the block's first record lacks; a malformed block tag; a
closing tag that is malformed or names another block, and a block opened inside an open one (in both
cases the open block ends there); a second header; a line of no known kind. An error in a block's
first lines may come before the block's BlockStart.

File-level problems raise MalformedInputError with the file name, the line and the reason: an empty
file; a first line that is not a well-formed header (this covers binary garbage); an encoding problem
(see encoding.py); the end of the file inside an open block, which is how a truncated file shows. The
rows already yielded stay yielded, so a caller must treat the whole file as failed on that error. A cut
that falls exactly after a closing tag leaves a well-formed file and cannot be told apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import cast

from adapters.dispatch.encoding import BinaryReader, EncodingListener, codec_for, iter_text_lines
from ground.errors import MalformedInputError

_SEPARATOR = re.compile(r"[ \t]+")
_TOKEN = re.compile(r"""'[^']*'(?![^ \t])|"[^"]*"(?![^ \t])|[^ \t]+""")
# A field of a tab-separated line: quoted up to a tab (or the end), or text between tabs, trimmed of spaces.
_TAB_TOKEN = re.compile(r"""'[^']*'(?=[ ]*(?:\t|$))|"[^"]*"(?=[ ]*(?:\t|$))|[^ \t](?:[^\t]*[^ \t])?""")
_ATTRIBUTE = re.compile(r"""[ \t]*([^ \t='"]+)[ \t]*=[ \t]*(?:'([^']*)'|"([^"]*)"|([^ \t'"]*))""")
_CLASS_FORBIDDEN = frozenset(" \t<>:!/'\"=")
_ENTITY_FORBIDDEN = frozenset(" \t<>")
_UNLINEABLE = frozenset("\n\r\x00")
_UNLINEABLE_TEXT = re.compile("[\n\r\x00]")


@dataclass(frozen=True, slots=True)
class Header:
    """The ``<! ... !>`` line: its attributes in file order, quotes removed."""

    attributes: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class BlockStart:
    """A block's class, entity, column names and labels (None when the file has no label line)."""

    class_name: str
    entity: str | None
    columns: tuple[str, ...]
    labels: tuple[str, ...] | None
    line_no: int
    vertical: bool = False
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CimeRow:
    """One record of a block: every column of its BlockStart mapped to its text, or None when empty.

    raw_line is the line as read (a vertical record's first line), for parking a row a caller rejects.
    """

    class_name: str
    entity: str | None
    line_no: int
    values: dict[str, str | None]
    raw_line: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BlockEnd:
    """The end of a block; line_no is where it ended (its closing tag, or the line that ended it)."""

    class_name: str
    entity: str | None
    line_no: int


@dataclass(frozen=True, slots=True)
class CimeRowError:
    """A line that could not be read; the lines around it are unaffected."""

    line_no: int
    reason: str
    raw_line: str

    def as_error(self, source_name: str) -> MalformedInputError:
        """The error to park this line with, naming the file and the line."""
        return MalformedInputError(f"{source_name}:{self.line_no}: {self.reason}: {self.raw_line!r}")


CimeItem = Header | BlockStart | CimeRow | BlockEnd | CimeRowError


@dataclass(frozen=True, slots=True)
class Block:
    """A block to render. Rows may be any iterable, a generator included; a missing column is written null."""

    class_name: str
    entity: str | None
    columns: tuple[str, ...]
    rows: Iterable[Mapping[str, str | None]]
    labels: tuple[str, ...] | None = None
    vertical: bool = False
    attributes: Mapping[str, str] = field(default_factory=dict)


class _RowProblem(Exception):
    """A problem with one line; turned into a CimeRowError by the parser."""


def iter_cime(
    stream: BinaryReader, *, source_name: str, on_encoding: EncodingListener | None = None
) -> Iterator[CimeItem]:
    """Parse a CIM/E file item by item; memory does not grow with the number of rows.

    on_encoding: told what the file is read as, declared or detected (see encoding.py).
    """
    parser = _Parser(source_name)
    items = parser.items
    last = 0
    lines = iter_text_lines(
        stream, source_name=source_name, declaration=_declared_code, on_encoding=on_encoding
    )
    for line_no, text in lines:
        last = line_no
        parser.feed(line_no, text)
        if items:
            yield from items
            items.clear()
    parser.finish(last)


def _declared_code(first_line: bytes) -> str | None:
    # Latin-1 keeps every byte. The header's punctuation (<, !, >, =, quotes, spaces, tabs) lies in
    # 0x09-0x3E outside the digits, bytes that no multi-byte character of UTF-8, GBK or GB18030 holds,
    # so the attributes read right before the encoding is known.
    line = first_line.decode("latin-1").strip(" \t")
    if not (line.startswith("<!") and line.endswith("!>") and len(line) >= 4):
        return None
    try:
        attributes = _parse_attributes(line[2:-2])
    except _RowProblem:
        return None
    return next((value for key, value in attributes.items() if key.lower() == "code"), None)


class _OpenBlock:
    """What the parser holds for the block being read."""

    __slots__ = (
        "attributes",
        "class_name",
        "columns",
        "columns_line",
        "entity",
        "expect_labels",
        "labels",
        "line_no",
        "mode",
        "record",
        "record_line",
        "record_raw",
        "started",
        "usable",
    )

    def __init__(self, class_name: str, entity: str | None, attributes: dict[str, str], line_no: int) -> None:
        self.class_name = class_name
        self.entity = entity
        self.attributes = attributes
        self.line_no = line_no
        self.mode: str | None = None
        self.columns: tuple[str, ...] = ()
        self.columns_line = 0
        self.labels: tuple[str, ...] | None = None
        self.expect_labels = False
        self.started = False
        self.usable = True
        self.record: dict[str, str | None] = {}
        self.record_line = 0
        self.record_raw = ""

    @property
    def tag(self) -> str:
        return _tag(self.class_name, self.entity)


class _Parser:
    def __init__(self, source_name: str) -> None:
        self.source_name = source_name
        self.seen_header = False
        self.block: _OpenBlock | None = None
        self.raw = ""
        self.items: list[CimeItem] = []

    def feed(self, line_no: int, text: str) -> None:
        self.raw = text
        line = text.strip(" \t")
        if not line or line[0] == "$":
            return
        if not self.seen_header:
            if not line.startswith("//"):
                self.items.append(self._header(line_no, line))
            return
        block = self.block
        try:
            if block is not None:
                if line[0] == "#":
                    if block.expect_labels:
                        block.expect_labels = False
                        self._start_horizontal(block)
                    self._data_row(block, line_no, line)
                    return
                if line.startswith("//") and block.expect_labels:
                    block.expect_labels = False
                    self._labels(block, line)
                    self._start_horizontal(block)
                    return
                if block.expect_labels:
                    block.expect_labels = False
                    self._start_horizontal(block)
            self._other(line_no, line)
        except _RowProblem as problem:
            self.items.append(CimeRowError(line_no, str(problem), text))

    def finish(self, last_line: int) -> None:
        if not self.seen_header:
            raise MalformedInputError(f"{self.source_name}: empty file: no CIM/E header line '<! ... !>'")
        if self.block is not None:
            block = self.block
            raise MalformedInputError(
                f"{self.source_name}:{last_line}: the file ends inside block {block.tag} opened at line "
                f"{block.line_no}: truncated, or the closing tag </{block.tag[1:]} is missing"
            )

    def _header(self, line_no: int, line: str) -> Header:
        if not (line.startswith("<!") and line.endswith("!>") and len(line) >= 4):
            raise MalformedInputError(
                f"{self.source_name}:{line_no}: expected the CIM/E header '<! ... !>', found {line[:80]!r}"
            )
        try:
            attributes = _parse_attributes(line[2:-2])
        except _RowProblem as problem:
            raise MalformedInputError(f"{self.source_name}:{line_no}: malformed header: {problem}") from None
        self.seen_header = True
        return Header(attributes)

    def _other(self, line_no: int, line: str) -> None:
        block = self.block
        head = line[0]
        if line.startswith("</"):
            self._close(line_no, line)
        elif line.startswith("<!"):
            raise _RowProblem("a second header line")
        elif head == "<":
            self._open(line_no, line)
        elif line.startswith("//"):
            return
        elif block is None:
            if head in "#@":
                raise _RowProblem("data outside any block")
            raise _RowProblem("not a CIM/E line (expected <, </, @, //, # or $)")
        elif line.startswith("@@"):
            self._columns(block, line_no, line, vertical=True)
        elif head == "@":
            self._columns(block, line_no, line, vertical=False)
        else:
            raise _RowProblem("not a CIM/E line (expected <, </, @, //, # or $)")

    def _open(self, line_no: int, line: str) -> None:
        if not line.endswith(">"):
            raise _RowProblem("block tag does not end with '>'")
        name, *rest = _SEPARATOR.split(line[1:-1].strip(" \t"), maxsplit=1)
        class_name, entity = _split_name(name)
        attributes = _parse_attributes(rest[0] if rest else "")
        if self.block is not None:
            previous = self.block
            self.items.append(
                CimeRowError(
                    line_no,
                    f"block {previous.tag} opened at line {previous.line_no} was not closed before this "
                    "block; it ends here",
                    self.raw,
                )
            )
            self._end(previous, line_no)
        self.block = _OpenBlock(class_name, entity, attributes, line_no)

    def _close(self, line_no: int, line: str) -> None:
        block = self.block
        if block is None:
            raise _RowProblem("closing tag without an open block")
        expected = f"</{block.tag[1:]}"
        if line != expected and line.replace(" ", "").replace("\t", "") != expected:
            self.items.append(
                CimeRowError(
                    line_no,
                    f"closing tag does not match the open block {block.tag} (line {block.line_no}), "
                    f"expected {expected}; that block ends here",
                    self.raw,
                )
            )
        self._end(block, line_no)

    def _end(self, block: _OpenBlock, line_no: int) -> None:
        self.block = None
        if block.mode == "vertical" and block.record:
            self._complete_record(block)
        self._start(block)
        self.items.append(BlockEnd(block.class_name, block.entity, line_no))

    def _start(self, block: _OpenBlock) -> None:
        if not block.started:
            block.started = True
            self.items.append(
                BlockStart(
                    block.class_name,
                    block.entity,
                    block.columns,
                    block.labels,
                    block.line_no,
                    vertical=block.mode == "vertical",
                    attributes=block.attributes,
                )
            )

    def _start_horizontal(self, block: _OpenBlock) -> None:
        if block.mode == "horizontal":
            self._start(block)

    def _columns(self, block: _OpenBlock, line_no: int, line: str, *, vertical: bool) -> None:
        if block.mode is not None:
            raise _RowProblem(f"a second column line in block {block.tag} (first: line {block.columns_line})")
        block.mode = "vertical" if vertical else "horizontal"
        block.columns_line = line_no
        block.expect_labels = True
        if vertical:
            return
        names = tuple(text for text, _ in _split_fields(line, 1))
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            block.usable = False
            raise _RowProblem(f"duplicate column names {duplicates}; the rows of this block cannot be read")
        block.columns = names

    def _labels(self, block: _OpenBlock, line: str) -> None:
        if block.mode == "vertical":
            return
        labels = tuple(text for text, _ in _split_fields(line, 2))
        if len(labels) != len(block.columns):
            raise _RowProblem(f"{len(labels)} labels for {len(block.columns)} columns; labels dropped")
        block.labels = labels

    def _data_row(self, block: _OpenBlock, line_no: int, line: str) -> None:
        if block.mode is None:
            raise _RowProblem(f"data row before the column line of block {block.tag}")
        if not block.usable:
            raise _RowProblem(f"block {block.tag} has no usable column line (line {block.columns_line})")
        if block.mode == "vertical":
            self._vertical_row(block, line_no, line)
            return
        values = _row_values(line)
        columns = block.columns
        if len(values) != len(columns):
            hint = ""
            if not _tab_separated(line, 1):
                if len(values) > len(columns):
                    hint = "; a value that holds spaces must be quoted, or the fields separated by tabs"
            elif any(value is not None and " " in value for value in values):
                hint = "; the line separates its fields by tabs, so its spaces belong to the values"
            raise _RowProblem(
                f"{len(values)} fields, but the column line (line {block.columns_line}) has {len(columns)}"
                + hint
            )
        values_by_column = dict(zip(columns, values, strict=True))
        self.items.append(CimeRow(block.class_name, block.entity, line_no, values_by_column, self.raw))

    def _vertical_row(self, block: _OpenBlock, line_no: int, line: str) -> None:
        fields = _split_fields(line, 1)
        if len(fields) not in (2, 3):
            raise _RowProblem(f"{len(fields)} fields; a vertical row is '# [order] name value'")
        (name, _), (value, quoted) = fields[-2], fields[-1]
        if name in block.record:
            self._complete_record(block)
        if block.started and name not in block.columns:
            raise _RowProblem(f"attribute {name!r} is not among the block's columns {list(block.columns)}")
        if not block.record:
            block.record_line = line_no
            block.record_raw = self.raw
        block.record[name] = _value(value, quoted)

    def _complete_record(self, block: _OpenBlock) -> None:
        record = block.record
        block.record = {}
        if not block.started:
            block.columns = tuple(record)
            self._start(block)
        values = {column: record.get(column) for column in block.columns}
        row = CimeRow(block.class_name, block.entity, block.record_line, values, block.record_raw)
        self.items.append(row)


def _split_name(name: str) -> tuple[str, str | None]:
    class_name, separator, entity = name.partition("::")
    if not class_name or any(char in _CLASS_FORBIDDEN for char in class_name):
        raise _RowProblem(f"block tag has no valid class name: {name!r}")
    if separator and (not entity or any(char in _ENTITY_FORBIDDEN for char in entity)):
        raise _RowProblem(f"block tag has no valid entity name after '::': {name!r}")
    return class_name, entity if separator else None


def _parse_attributes(text: str) -> dict[str, str]:
    text = text.strip(" \t")
    attributes: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _ATTRIBUTE.match(text, position)
        if match is None or text[match.end() : match.end() + 1] not in ("", " ", "\t"):
            raise _RowProblem(f"cannot read a key=value attribute at {text[position:].strip(' ')[:40]!r}")
        key = match.group(1)
        if key in attributes:
            raise _RowProblem(f"attribute {key!r} given twice")
        attributes[key] = next(group for group in match.groups()[1:] if group is not None)
        position = match.end()
    return attributes


def _tokens(line: str, start: int) -> list[str]:
    """The fields of a line from position start as written, quotes included (see the module docstring)."""
    tokens: list[str] = _TOKEN.findall(line, start)
    # The split at tabs can differ only where spaces separate fields too. Spaces inside fields are inside
    # quotes (an unquoted field has none), so counting them is a cheap test that most lines pass.
    if len(tokens) > 1 and "\t" in line and line.count(" ", start) != "".join(tokens).count(" "):
        tab_tokens: list[str] = _TAB_TOKEN.findall(line, start)
        if tab_tokens != tokens and _tab_separated(line, start):
            return tab_tokens
    return tokens


def _tab_separated(line: str, start: int) -> bool:
    """Whether a tab precedes one of the line's fields (a tab inside a quoted value does not count)."""
    end = start
    for match in _TOKEN.finditer(line, start):
        if "\t" in line[end : match.start()]:
            return True
        end = match.end()
    return False


def _split_fields(line: str, start: int) -> list[tuple[str, bool]]:
    """Split a line from position start into (text, was_quoted) fields."""
    return [_unquoted(token) if token[0] in "'\"" else (token, False) for token in _tokens(line, start)]


def _unquoted(token: str) -> tuple[str, bool]:
    return _inside_quotes(token), True


def _inside_quotes(token: str) -> str:
    quote = token[0]
    if token.find(quote, 1) != len(token) - 1:
        raise _RowProblem(f"unbalanced {quote} quote in field {token!r}")
    return token[1:-1]


def _value(text: str, quoted: bool) -> str | None:
    if not quoted and (text == "-" or (len(text) == 4 and text.lower() == "null")):
        return None
    return text


def _row_values(line: str) -> list[str | None]:
    """The values of a data row; its hot path, so it rewrites the token list in place."""
    tokens = _tokens(line, 1)
    values = cast(list[str | None], tokens)
    for index, token in enumerate(tokens):
        # "-" is the CIM/E empty-value marker (bandit takes the comparison for a password).
        if token == "-" or (len(token) == 4 and token.lower() == "null"):  # nosec B105
            values[index] = None
        elif token[0] in "'\"":
            values[index] = _inside_quotes(token)
    return values


def _tag(class_name: str, entity: str | None) -> str:
    return f"<{class_name}::{entity}>" if entity is not None else f"<{class_name}>"


def iter_cime_lines(header: Header, blocks: Iterable[Block]) -> Iterator[str]:
    """Render line by line (each ending in a newline); rows are pulled from each block as they are written.

    Fields are tab-separated. A text is quoted when it is empty, holds a space or a tab, starts with a
    quote, or (in data rows) reads as an empty marker (null in any case, or -); None is written null.
    Raises MalformedInputError for what CIM/E cannot hold: line breaks or NUL in any text, a text with
    whitespace and both quote characters, invalid class or entity names, duplicate columns, row keys that
    are not columns, a label count that differs from the column count, rows of a vertical block without
    columns.
    """
    attributes = _render_attributes(header.attributes, "header")
    yield f"<! {attributes} !>\n" if attributes else "<! !>\n"
    for block in blocks:
        yield from _render_block(block)


def render_cime(header: Header, blocks: Iterable[Block]) -> str:
    """The whole file as one string (small files, tests); see iter_cime_lines for the rules."""
    return "".join(iter_cime_lines(header, blocks))


def iter_cime_bytes(header: Header, blocks: Iterable[Block]) -> Iterator[bytes]:
    """Render line by line, encoded as the header's Code= declares (UTF-8 when it declares nothing)."""
    declared = next((value for key, value in header.attributes.items() if key.lower() == "code"), None)
    codec = "utf-8" if declared is None else codec_for(declared, source_name="CIM/E header to render")
    for number, line in enumerate(iter_cime_lines(header, blocks), start=1):
        try:
            yield line.encode(codec)
        except UnicodeEncodeError as exc:
            raise MalformedInputError(
                f"rendered CIM/E line {number}: {line[exc.start : exc.end]!r} cannot be encoded as {declared}"
            ) from exc


def _render_block(block: Block) -> Iterator[str]:
    name = _render_name(block.class_name, block.entity)
    attributes = _render_attributes(block.attributes, f"block {name}")
    yield f"<{name} {attributes}>\n" if attributes else f"<{name}>\n"
    columns = block.columns
    if len(set(columns)) != len(columns):
        raise MalformedInputError(f"block {name}: duplicate column names in {list(columns)}")
    known = frozenset(columns)
    if block.vertical:
        yield "@@\tNum\tname\tvalue\n"
        for row in block.rows:
            _check_keys(row, known, name)
            if not columns:
                raise MalformedInputError(f"block {name}: a vertical block with rows needs columns")
            for order, column in enumerate(columns, start=1):
                value = _render_value(row.get(column), name)
                yield f"#\t{order}\t{_quote(column, 'column', name)}\t{value}\n"
    else:
        yield "@\t" + "\t".join(_quote(column, "column", name) for column in columns) + "\n"
        if block.labels is not None:
            if len(block.labels) != len(columns):
                raise MalformedInputError(
                    f"block {name}: {len(block.labels)} labels for {len(columns)} columns"
                )
            yield "//\t" + "\t".join(_quote(label, "label", name) for label in block.labels) + "\n"
        for row in block.rows:
            _check_keys(row, known, name)
            yield "#\t" + "\t".join(_render_value(row.get(column), name) for column in columns) + "\n"
    yield f"</{name}>\n"


def _render_name(class_name: str, entity: str | None) -> str:
    if not class_name or any(char in _CLASS_FORBIDDEN or char in _UNLINEABLE for char in class_name):
        raise MalformedInputError(f"class name {class_name!r} cannot be written in a CIM/E block tag")
    if entity is None:
        return class_name
    if not entity or any(char in _ENTITY_FORBIDDEN or char in _UNLINEABLE for char in entity):
        raise MalformedInputError(f"entity name {entity!r} cannot be written in a CIM/E block tag")
    return f"{class_name}::{entity}"


def _render_attributes(attributes: Mapping[str, str], where: str) -> str:
    parts = []
    for key, value in attributes.items():
        if not key or any(char in " \t='\"" or char in _UNLINEABLE for char in key):
            raise MalformedInputError(f"{where}: attribute name {key!r} cannot be written in CIM/E")
        bare = bool(value) and not any(char in " \t'\"" for char in value)
        parts.append(f"{key}={value if bare else _quote(value, 'attribute value', where, force=True)}")
    return " ".join(parts)


def _check_keys(row: Mapping[str, str | None], known: frozenset[str], where: str) -> None:
    unknown = [key for key in row if key not in known]
    if unknown:
        raise MalformedInputError(f"block {where}: row keys {unknown} are not among its columns")


def _render_value(value: str | None, where: str) -> str:
    if value is None:
        return "null"
    if value == "-" or (len(value) == 4 and value.lower() == "null"):
        return f"'{value}'"
    return _quote(value, "value", where)


def _quote(text: str, what: str, where: str, *, force: bool = False) -> str:
    if _UNLINEABLE_TEXT.search(text):
        raise MalformedInputError(f"{where}: {what} {text!r} holds a line break or NUL; CIM/E cannot hold it")
    if not force and text and text[0] not in "'\"" and " " not in text and "\t" not in text:
        return text
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise MalformedInputError(
        f"{where}: {what} {text!r} needs quotes but holds both quote characters; CIM/E cannot hold it"
    )
