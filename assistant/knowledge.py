"""The knowledge base the utility edits: YAML entries per province under knowledge/<province>/."""

from __future__ import annotations

from dataclasses import dataclass


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
class KnowledgeBase:
    """One province's entries (the defaults with the province's own replacing them by id) and its hotline."""

    province: str
    hotline: str
    entries: tuple[KnowledgeEntry, ...]


@dataclass(frozen=True)
class KnowledgeMatch:
    """The entry closest to a question, and how sure the retrieval is of it (0 to 1).

    confident is False for an answer given near the threshold: the question is kept for staff (gaps).
    """

    entry: KnowledgeEntry
    score: float
    confident: bool
