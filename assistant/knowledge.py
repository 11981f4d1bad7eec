"""The knowledge base the utility edits: YAML entries per province under knowledge/<province>/."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from mappings.yamlfile import (
    Diagnostics,
    is_list,
    is_map,
    item_line,
    key_line,
    line_of,
    read_yaml,
    unknown_keys,
)


@dataclass(frozen=True)
class KnowledgeEntry:
    """One question the utility answers, with the ways customers phrase it and where the answer comes from."""

    id: str
    question: str
    paraphrases: tuple[str, ...]
    answer: str
    tags: tuple[str, ...]
    # The public rule the answer is written from (供电营业规则, the 2020 获得电力 opinion, ...).
    source: str
    # Where the entry is written, for staff who edit it: knowledge/default/process.yaml and its line.
    file: str
    line: int


@dataclass(frozen=True)
class DeclinedTopic:
    """A kind of question the assistant declines though it is about electricity (bills, outages...), with
    examples of how customers ask it: such a question is refused with the hotline, not answered from the
    nearest entry."""

    topic: str
    examples: tuple[str, ...]
    # Where the topic is written: knowledge/default/declined.yaml and its line.
    file: str
    line: int


@dataclass(frozen=True)
class KnowledgeBase:
    """One province's entries (the defaults with the province's own replacing them by id), the topics it
    declines (replaced by topic the same way) and its hotline."""

    province: str
    hotline: str
    entries: tuple[KnowledgeEntry, ...]
    declined: tuple[DeclinedTopic, ...] = ()


@dataclass(frozen=True)
class KnowledgeMatch:
    """The entry closest to a question, and how sure the retrieval is of it (0 to 1).

    confident is False for an answer given near the threshold: the question is kept for staff (gaps).
    """

    entry: KnowledgeEntry
    score: float
    confident: bool


KNOWLEDGE_FOLDER = "knowledge"
DEFAULT_PROVINCE = "default"
PROVINCE_FILE = "province.yaml"
DECLINED_FILE = "declined.yaml"
PROVINCE_KEYS = ("province", "name", "hotline")
ENTRY_KEYS = ("id", "question", "paraphrases", "answer", "tags", "source")
DECLINED_KEYS = ("topic", "examples")
# Characters two phrasings may differ by and still be the same question.
_INSIGNIFICANT = re.compile(r"[\s\W_]+")


@dataclass(frozen=True)
class _Phrasing:
    """A question or paraphrase of an entry, or an example of a declined topic, where it is written."""

    owner: tuple[str, str]  # ("entry", id) or ("declined topic", topic)
    text: str
    file: str
    line: int


@dataclass(frozen=True)
class _Folder:
    """What one province folder holds: its hotline, its entries, its declined topics and each of their
    phrasings with its line."""

    hotline: str | None
    entries: tuple[KnowledgeEntry, ...]
    declined: tuple[DeclinedTopic, ...]
    phrasings: tuple[_Phrasing, ...]


def load_knowledge(config_dir: Path, province: str = DEFAULT_PROVINCE) -> KnowledgeBase:
    """The province's knowledge base from config_dir/knowledge/: the defaults, with the province's own
    entries replacing default entries of the same id and adding new ones. Raises ConfigError listing every
    problem of every file read, each as `knowledge/<province>/<file>.yaml:<line>: ...`."""
    diag = Diagnostics(config_dir)
    root = config_dir / KNOWLEDGE_FOLDER
    if not (root / province).is_dir():
        known = ", ".join(_province_folders(root)) or "none"
        diag.error(
            f"unknown province {province!r}: no folder {province}/ (provinces: {known})",
            f"{KNOWLEDGE_FOLDER}/",
        )
        diag.raise_if_any()
    folder = _read_folder(root / DEFAULT_PROVINCE, diag)
    if province != DEFAULT_PROVINCE:
        folder = _merge(folder, _read_folder(root / province, diag), diag)
    diag.raise_if_any()
    assert folder.hotline is not None  # a missing hotline is an error raised above
    return KnowledgeBase(
        province=province, hotline=folder.hotline, entries=folder.entries, declined=folder.declined
    )


def read_knowledge_config(config_dir: Path, diag: Diagnostics) -> None:
    """Record in diag every problem of every province folder under config_dir/knowledge/."""
    root = config_dir / KNOWLEDGE_FOLDER
    default = _read_folder(root / DEFAULT_PROVINCE, diag)
    for name in _province_folders(root):
        if name != DEFAULT_PROVINCE:
            _merge(default, _read_folder(root / name, diag), diag)


def _province_folders(root: Path) -> list[str]:
    return sorted(path.name for path in root.glob("*") if path.is_dir())


def _merge(default: _Folder, own: _Folder, diag: Diagnostics) -> _Folder:
    """The defaults with a province's entries replacing them by id and its declined topics by topic.
    Phrasings repeated across the two are reported here; each folder's own repetitions were reported when
    it was read."""
    replaced = {phrasing.owner for phrasing in own.phrasings}
    kept = tuple(phrasing for phrasing in default.phrasings if phrasing.owner not in replaced)
    _check_repeated(own.phrasings, diag, earlier=kept)
    entries = tuple(entry for entry in default.entries if ("entry", entry.id) not in replaced)
    declined = tuple(topic for topic in default.declined if ("declined topic", topic.topic) not in replaced)
    return _Folder(
        hotline=own.hotline,
        entries=entries + own.entries,
        declined=declined + own.declined,
        phrasings=kept + own.phrasings,
    )


def _read_folder(folder: Path, diag: Diagnostics) -> _Folder:
    """A province folder's province.yaml and entry files; problems are recorded, broken entries left out."""
    name = diag.display(folder)
    if not folder.is_dir():
        diag.error(f"no folder {folder.name}/: every province starts from the default entries", name)
        return _Folder(hotline=None, entries=(), declined=(), phrasings=())
    hotline = _read_province_file(folder, diag)
    entries: list[KnowledgeEntry] = []
    phrasings: list[_Phrasing] = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name not in (PROVINCE_FILE, DECLINED_FILE):
            _read_entry_file(path, diag, entries, phrasings)
    declined = _read_declined_file(folder / DECLINED_FILE, diag, phrasings)
    _check_duplicate_ids(entries, diag)
    _check_repeated(tuple(phrasings), diag, earlier=())
    return _Folder(
        hotline=hotline, entries=tuple(entries), declined=tuple(declined), phrasings=tuple(phrasings)
    )


def _read_province_file(folder: Path, diag: Diagnostics) -> str | None:
    """The province's hotline, after checking province.yaml names the folder it is in."""
    path = folder / PROVINCE_FILE
    file = diag.display(path)
    if not path.is_file():
        diag.error(f"missing {PROVINCE_FILE} (keys: {', '.join(PROVINCE_KEYS)})", diag.display(folder))
        return None
    document = read_yaml(path, file, diag)
    if document is None:
        return None
    if not is_map(document):
        diag.error(f"expected a map with keys {', '.join(PROVINCE_KEYS)}", file, 1)
        return None
    for key in (key for key in PROVINCE_KEYS if key not in document):
        why = ": the number offered when the assistant cannot answer" if key == "hotline" else ""
        diag.error(f"missing {key}{why}", file, 1)
    for key, line in unknown_keys(document, PROVINCE_KEYS):
        diag.error(f"unknown key {key!r} (keys: {', '.join(PROVINCE_KEYS)})", file, line)
    values = _strings(document, PROVINCE_KEYS, file, diag)
    province = values.get("province")
    if province is not None and province != folder.name:
        diag.error(
            f"province {province!r} is not the folder's name {folder.name!r}",
            file,
            key_line(document, "province"),
        )
    return values.get("hotline")


def _read_entry_file(
    path: Path, diag: Diagnostics, entries: list[KnowledgeEntry], phrasings: list[_Phrasing]
) -> None:
    file = diag.display(path)
    document = read_yaml(path, file, diag)
    if document is None:
        return
    if not is_map(document) or "entries" not in document:
        diag.error("expected a map with the one key `entries`, a list of entries", file, 1)
        return
    for key, line in unknown_keys(document, ("entries",)):
        diag.error(f"unknown key {key!r}: the file holds only `entries`", file, line)
    items = document["entries"]
    if not is_list(items):
        diag.error("`entries` must be a list of entries", file, key_line(document, "entries"))
        return
    for index, item in enumerate(items):
        if not is_map(item):
            diag.error(
                f"an entry must be a map with keys {', '.join(ENTRY_KEYS)}", file, item_line(items, index)
            )
            continue
        _read_entry(item, file, diag, entries, phrasings)


def _read_entry(
    node: CommentedMap,
    file: str,
    diag: Diagnostics,
    entries: list[KnowledgeEntry],
    phrasings: list[_Phrasing],
) -> None:
    line = line_of(node)
    before = len(diag.errors)
    missing = [key for key in ENTRY_KEYS if key not in node]
    if missing:
        diag.error(f"entry is missing {', '.join(missing)}", file, line)
    for key, key_at in unknown_keys(node, ENTRY_KEYS):
        diag.error(f"unknown key {key!r} (keys: {', '.join(ENTRY_KEYS)})", file, key_at)
    texts = _strings(node, ("id", "question", "answer", "source"), file, diag)
    paraphrases = _string_list(node, "paraphrases", file, diag)
    tags = _string_list(node, "tags", file, diag)
    if len(diag.errors) > before:
        return
    entry_id = texts["id"]
    owner = ("entry", entry_id)
    phrasings.append(_Phrasing(owner, texts["question"], file, key_line(node, "question")))
    listed = node["paraphrases"]
    phrasings.extend(
        _Phrasing(owner, text, file, item_line(listed, index)) for index, text in enumerate(paraphrases)
    )
    entries.append(
        KnowledgeEntry(
            id=entry_id,
            question=texts["question"],
            paraphrases=tuple(paraphrases),
            answer=texts["answer"],
            tags=tuple(tags),
            source=texts["source"],
            file=file,
            line=line,
        )
    )


def _read_declined_file(path: Path, diag: Diagnostics, phrasings: list[_Phrasing]) -> list[DeclinedTopic]:
    """The folder's declined topics, if it has the file; their examples are added to phrasings, as one
    wording must lead either to an entry or to a refusal."""
    if not path.is_file():
        return []
    file = diag.display(path)
    document = read_yaml(path, file, diag)
    if document is None:
        return []
    if not is_map(document) or "declined" not in document:
        diag.error("expected a map with the one key `declined`, a list of {topic, examples}", file, 1)
        return []
    for key, line in unknown_keys(document, ("declined",)):
        diag.error(f"unknown key {key!r}: the file holds only `declined`", file, line)
    items = document["declined"]
    if not is_list(items):
        diag.error("`declined` must be a list of {topic, examples}", file, key_line(document, "declined"))
        return []
    topics: list[DeclinedTopic] = []
    for index, item in enumerate(items):
        if not is_map(item):
            diag.error(
                "a declined topic must be a map with keys topic, examples", file, item_line(items, index)
            )
            continue
        topic = _read_declined_topic(item, file, diag, phrasings)
        if topic is not None:
            topics.append(topic)
    _check_duplicate_topics(topics, diag)
    return topics


def _read_declined_topic(
    node: CommentedMap, file: str, diag: Diagnostics, phrasings: list[_Phrasing]
) -> DeclinedTopic | None:
    line = line_of(node)
    before = len(diag.errors)
    missing = [key for key in DECLINED_KEYS if key not in node]
    if missing:
        diag.error(f"declined topic is missing {', '.join(missing)}", file, line)
    for key, key_at in unknown_keys(node, DECLINED_KEYS):
        diag.error(f"unknown key {key!r} (keys: {', '.join(DECLINED_KEYS)})", file, key_at)
    texts = _strings(node, ("topic",), file, diag)
    examples = _string_list(node, "examples", file, diag)
    if "examples" in node and is_list(node["examples"]) and not node["examples"]:
        diag.error("examples is empty: a topic is known by its examples", file, key_line(node, "examples"))
    if len(diag.errors) > before:
        return None
    owner = ("declined topic", texts["topic"])
    listed = node["examples"]
    phrasings.extend(
        _Phrasing(owner, text, file, item_line(listed, index)) for index, text in enumerate(examples)
    )
    return DeclinedTopic(topic=texts["topic"], examples=tuple(examples), file=file, line=line)


def _strings(node: CommentedMap, keys: tuple[str, ...], file: str, diag: Diagnostics) -> dict[str, str]:
    """The present keys' values, stripped; another type than a string or an empty string is an error."""
    values: dict[str, str] = {}
    for key in (key for key in keys if key in node):
        value: Any = node[key]
        if not isinstance(value, str):
            diag.error(f"{key} must be a string", file, key_line(node, key))
        elif not value.strip():
            diag.error(f"{key} is empty", file, key_line(node, key))
        else:
            values[key] = value.strip()
    return values


def _string_list(node: CommentedMap, key: str, file: str, diag: Diagnostics) -> list[str]:
    if key not in node:
        return []
    value = node[key]
    if not is_list(value):
        diag.error(f"{key} must be a list of strings", file, key_line(node, key))
        return []
    texts: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            diag.error(f"{key}: item {index + 1} must be a non-empty string", file, item_line(value, index))
        else:
            texts.append(item.strip())
    return texts


def _check_duplicate_ids(entries: list[KnowledgeEntry], diag: Diagnostics) -> None:
    first: dict[str, KnowledgeEntry] = {}
    for entry in entries:
        seen = first.setdefault(entry.id, entry)
        if seen is not entry:
            diag.error(f"duplicate id {entry.id!r}: also at {seen.file}:{seen.line}", entry.file, entry.line)


def _check_duplicate_topics(topics: list[DeclinedTopic], diag: Diagnostics) -> None:
    first: dict[str, DeclinedTopic] = {}
    for topic in topics:
        seen = first.setdefault(topic.topic, topic)
        if seen is not topic:
            diag.error(
                f"duplicate topic {topic.topic!r}: also at {seen.file}:{seen.line}", topic.file, topic.line
            )


def _check_repeated(
    phrasings: tuple[_Phrasing, ...], diag: Diagnostics, earlier: tuple[_Phrasing, ...]
) -> None:
    """Report each phrasing that repeats an earlier one (the earlier list first, then its own), ignoring
    spaces, punctuation, letter case and full/half width: one wording must lead to one entry."""
    first: dict[str, _Phrasing] = {comparable(p.text): p for p in reversed(earlier)}
    for phrasing in phrasings:
        seen = first.setdefault(comparable(phrasing.text), phrasing)
        if seen is phrasing:
            continue
        kind, name = seen.owner
        what = "a question or paraphrase" if kind == "entry" else "an example"
        where = f"its own {kind}" if seen.owner == phrasing.owner else f"{kind} {name!r}"
        diag.error(
            f"{phrasing.text!r} repeats {what} of {where} at {seen.file}:{seen.line}",
            phrasing.file,
            phrasing.line,
        )


def comparable(text: str) -> str:
    """The text as two wordings are compared: without spaces and punctuation, case or full/half width."""
    return _INSIGNIFICANT.sub("", unicodedata.normalize("NFKC", text)).casefold()
