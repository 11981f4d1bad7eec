"""Questions the knowledge base could not answer, or answered without confidence, kept for staff to turn
into entries (`yekuo assistant gaps`).

A question is stored scrubbed: every mobile and landline number, resident ID, bank card, e-mail address,
application number and 4-digit verification code is replaced by a placeholder, and so is a name given after
我叫 / 本人 / 户名. The same scrubbed text asked again counts once more on one row, so two customers asking
the same thing about their own numbers make one gap asked twice.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from store.database import utcnow
from store.schema import assistant_gaps

GapKind = Literal["unanswered", "low_confidence"]

# Public service numbers customers quote; they are not anybody's personal data.
_PUBLIC_NUMBERS = r"(?!95598(?!\d))(?!12398(?!\d))"
_NOT_DIGIT_BEFORE = r"(?<![0-9])"
_NOT_DIGIT_AFTER = r"(?![0-9])"
# Each shape with its placeholder, in the order they are replaced: longer and more specific shapes first,
# so a bank card is not taken for an application number nor its last digits for a code.
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.ASCII), "【邮箱】"),
    (
        re.compile(
            _NOT_DIGIT_BEFORE + r"\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
            r"(?![0-9A-Za-z])",
            re.ASCII,
        ),
        "【身份证号】",
    ),
    (
        re.compile(
            _NOT_DIGIT_BEFORE + r"(?:\d{4}[ -]){3}\d{4}(?:[ -]?\d{1,3})?" + _NOT_DIGIT_AFTER, re.ASCII
        ),
        "【银行卡号】",
    ),
    (re.compile(_NOT_DIGIT_BEFORE + r"\d{16,19}" + _NOT_DIGIT_AFTER, re.ASCII), "【银行卡号】"),
    (
        re.compile(
            _NOT_DIGIT_BEFORE + r"(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _NOT_DIGIT_AFTER, re.ASCII
        ),
        "【手机号】",
    ),
    (re.compile(_NOT_DIGIT_BEFORE + r"0\d{2,3}[ -]?\d{7,8}" + _NOT_DIGIT_AFTER, re.ASCII), "【电话】"),
    # Application numbers, and any other long run of digits a customer may quote (account numbers).
    (
        re.compile(_NOT_DIGIT_BEFORE + _PUBLIC_NUMBERS + r"\d{5,}" + _NOT_DIGIT_AFTER, re.ASCII),
        "【申请编号】",
    ),
    # A 4-digit run followed by a unit is a year, an amount or a size; any other may be a code.
    (
        re.compile(
            _NOT_DIGIT_BEFORE
            + r"\d{4}"
            + _NOT_DIGIT_AFTER
            + r"(?!\s*(?:年|元|块|千|万|平|米|度|瓦|伏|[kKvVwW]))",
            re.ASCII,
        ),
        "【验证码】",
    ),
)
_SPACE_BY_CHINESE = re.compile(r"(?<=[^\x00-\x7f]) | (?=[^\x00-\x7f])")
NAME = "【姓名】"
_NAME_CUE = re.compile(
    r"(我叫|我的名字是|我是|本人(?:是|名叫|叫)?|(?:户名|户主|姓名|联系人)(?:是|为)?\s*[:：]?)"
    r"\s*([\u4e00-\u9fff·]{1,4})"
)
# Characters that end a name given in passing: "我叫张三想问" names 张三. A name keeps its first two.
_AFTER_NAME = frozenset("想要需在已的有现准刚去能可对因和跟是把被给从向就也都还再又才没不很请问申办，。")
# After 本人 and 我是 a verb or a role is more usual than a name ("本人想申请", "我是开饭馆的"): there a
# name starts with none of these. After the other cues a name follows, whatever its first character
# (于, 向, 和 and 申 are surnames too).
_VERB_OR_NAME_CUES = ("本人", "我是")
_NOT_A_NAME_START = frozenset(
    "想要需在已的有现准刚去能可对于因和跟是把被给从向就也都还再又才没不很申办家开做"
)


def _name(match: re.Match[str]) -> str:
    cue, candidate = match.group(1), match.group(2)
    if cue.startswith(_VERB_OR_NAME_CUES) and candidate[0] in _NOT_A_NAME_START:
        return match.group(0)
    end = next((i for i, char in enumerate(candidate) if i >= 2 and char in _AFTER_NAME), len(candidate))
    return cue + NAME + candidate[end:]


def scrub(question: str) -> str:
    """The question with its personal data replaced by placeholders (【手机号】, 【姓名】, ...).

    Full-width digits and letters are read as ASCII first, so they hide nothing; spaces beside Chinese
    text are dropped after, so "电费 【手机号】 怎么交" and "电费【手机号】怎么交" are one question.
    """
    text = " ".join(unicodedata.normalize("NFKC", question).split())
    for pattern, placeholder in _SHAPES:
        text = pattern.sub(placeholder, text)
    return _SPACE_BY_CHINESE.sub("", _NAME_CUE.sub(_name, text))


@dataclass(frozen=True)
class Gap:
    """A question the knowledge base did not answer well, and how often it was asked."""

    question: str
    kind: GapKind
    best_entry_id: str | None
    best_score: float | None
    first_asked_at: datetime
    last_asked_at: datetime
    times_asked: int


class GapLog:
    """Keeps the assistant's unanswered and low-confidence questions, scrubbed, in the hub database."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    def record(self, question: str, kind: GapKind, entry_id: str | None, score: float | None) -> None:
        """Count the question once more (its kind and best entry as this time), or keep it as a new gap."""
        text = scrub(question)
        key = hashlib.sha256(text.encode("utf-8")).hexdigest()
        now = self._clock()
        latest: dict[str, object] = {
            "kind": kind,
            "best_entry_id": entry_id,
            "best_score": score,
            "last_asked_at": now,
        }
        with self._engine.begin() as conn:
            if _count_again(conn, key, latest):
                return
            try:
                with conn.begin_nested():
                    conn.execute(
                        assistant_gaps.insert().values(
                            question_key=key, question=text, first_asked_at=now, times_asked=1, **latest
                        )
                    )
            except sa.exc.IntegrityError:
                _count_again(conn, key, latest)  # another process stored it first


def _count_again(conn: Connection, key: str, latest: dict[str, object]) -> bool:
    updated = conn.execute(
        assistant_gaps.update()
        .where(assistant_gaps.c.question_key == key)
        .values(times_asked=assistant_gaps.c.times_asked + 1, **latest)
    )
    return updated.rowcount > 0


def list_gaps(conn: Connection, *, since: datetime | None = None, limit: int = 50) -> list[Gap]:
    """The gaps most asked first (the most recently asked first among equals); since: only those last
    asked at or after that moment."""
    query = sa.select(assistant_gaps)
    if since is not None:
        query = query.where(assistant_gaps.c.last_asked_at >= since)
    query = query.order_by(
        assistant_gaps.c.times_asked.desc(),
        assistant_gaps.c.last_asked_at.desc(),
        assistant_gaps.c.question_key,
    )
    return [
        Gap(
            question=row.question,
            kind=row.kind,
            best_entry_id=row.best_entry_id,
            best_score=row.best_score,
            first_asked_at=row.first_asked_at,
            last_asked_at=row.last_asked_at,
            times_asked=row.times_asked,
        )
        for row in conn.execute(query.limit(limit))
    ]
