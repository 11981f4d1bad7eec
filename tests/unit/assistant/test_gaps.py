"""Gaps: questions kept with every kind of personal data replaced, the same scrubbed question counted on one
row, and listed by frequency."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant.gaps import GapLog, list_gaps, scrub
from ground.clock import FixedClock
from store.database import create_engine
from yekuo.cli import main

START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("question", "personal", "placeholder"),
    [
        ("我的手机13812345678收不到短信", "13812345678", "【手机号】"),
        ("手机号 138-1234-5678 换了怎么办", "138-1234-5678", "【手机号】"),
        ("全角的手机号１３８１２３４５６７８", "12345678", "【手机号】"),
        ("座机0371-65432100能登记吗", "0371-65432100", "【电话】"),
        ("身份证410102199001011234可以办吗", "410102199001011234", "【身份证号】"),
        ("身份证号41010219900101123X丢了", "41010219900101123X", "【身份证号】"),
        ("银行卡6222021234567890123能代扣吗", "6222021234567890123", "【银行卡号】"),
        ("卡号6222 0212 3456 7890 123", "6222 0212 3456 7890 123", "【银行卡号】"),
        ("资料发到zhang.wei@example.com可以吗", "zhang.wei@example.com", "【邮箱】"),
        ("申请2026112000001的图纸怎么交", "2026112000001", "【申请编号】"),
        ("验证码1111不对", "1111", "【验证码】"),
        ("我叫张伟，想问增容", "张伟", "【姓名】"),
        ("我叫欧阳娜娜想问增容", "欧阳娜娜", "【姓名】"),
        ("本人李强要更名", "李强", "【姓名】"),
        ("户名：王芳，怎么过户", "王芳", "【姓名】"),
        ("户名是赵敏静可以销户吗", "赵敏静", "【姓名】"),
        # Surnames that are also common words: 向, 于, 申, 和.
        ("我叫向明，想问增容", "向明", "【姓名】"),
        ("户名是于洋，电表坏了", "于洋", "【姓名】"),
        ("我叫申军", "申军", "【姓名】"),
        ("户名：和珅", "和珅", "【姓名】"),
        ("我是王小二，想问增容", "王小二", "【姓名】"),
        ("联系人李四，手机在资料上", "李四", "【姓名】"),
        ("户主刘洋不在家能办吗", "刘洋", "【姓名】"),
    ],
)
def test_each_kind_of_personal_data_is_replaced(question: str, personal: str, placeholder: str) -> None:
    scrubbed = scrub(question)
    assert personal not in scrubbed and placeholder in scrubbed, scrubbed


def test_what_is_not_personal_stays_readable() -> None:
    assert (
        scrub("2025年以后160千瓦以下的小微企业打95598可以吗")
        == "2025年以后160千瓦以下的小微企业打95598可以吗"
    )
    # After 本人 and 我是 a verb or a role is more usual than a name.
    assert scrub("本人想申请充电桩") == "本人想申请充电桩"
    assert scrub("我是开饭馆的想加容量") == "我是开饭馆的想加容量"
    assert scrub("我叫张三想问增容") == "我叫【姓名】想问增容"


def test_the_same_question_about_different_numbers_is_one_gap_counted_twice(sqlite_engine: Engine) -> None:
    clock = FixedClock(START)
    gaps = GapLog(sqlite_engine, clock=clock)
    gaps.record("电费13812345678怎么交", "unanswered", None, None)
    clock.advance(timedelta(hours=1))
    gaps.record("电费 13900001111 怎么交", "low_confidence", "fees", 0.41)
    gaps.record("停电了", "unanswered", None, None)
    with sqlite_engine.connect() as conn:
        listed = list_gaps(conn)
    assert [(gap.question, gap.times_asked) for gap in listed] == [
        ("电费【手机号】怎么交", 2),
        ("停电了", 1),
    ]
    first = listed[0]
    # Kind and best entry as last asked; first and last asked kept apart.
    assert (first.kind, first.best_entry_id, first.best_score) == ("low_confidence", "fees", 0.41)
    assert (first.first_asked_at, first.last_asked_at) == (START, START + timedelta(hours=1))


def test_since_and_limit_narrow_the_list(sqlite_engine: Engine) -> None:
    clock = FixedClock(START)
    gaps = GapLog(sqlite_engine, clock=clock)
    for _ in range(3):
        gaps.record("电价多少", "unanswered", None, None)
    clock.advance(timedelta(days=2))
    gaps.record("发票怎么开", "unanswered", None, None)
    gaps.record("电表坏了", "unanswered", None, None)
    with sqlite_engine.connect() as conn:
        assert [gap.question for gap in list_gaps(conn, limit=1)] == ["电价多少"]
        recent = list_gaps(conn, since=START + timedelta(days=1))
    # Equal counts and times: the order of their keys (the text is sealed, so it cannot sort them).
    assert sorted(gap.question for gap in recent) == ["发票怎么开", "电表坏了"]


def test_the_command_lists_gaps_by_frequency_as_a_table_or_json(
    sqlite_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FixedClock(START)
    gaps = GapLog(sqlite_engine, clock=clock)
    gaps.record("电价多少", "unanswered", None, None)
    gaps.record("电价多少", "unanswered", None, None)
    clock.advance(timedelta(days=3))
    gaps.record("增容要多久我叫张伟", "low_confidence", "capacity-increase", 0.52)
    url = str(sqlite_engine.url)

    assert main(["assistant", "gaps", "--db-url", url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["次数", "类型", "最近提问", "最接近条目", "得分", "问题"]
    assert table[1].split() == ["2", "unanswered", "2026-12-01", "—", "—", "电价多少"]
    assert table[2].split() == [
        "1",
        "low_confidence",
        "2026-12-04",
        "capacity-increase",
        "0.52",
        "增容要多久我叫【姓名】",
    ]

    assert (
        main(["assistant", "gaps", "--db-url", url, "--json", "--since", "2026-12-02", "--limit", "5"]) == 0
    )
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {
            "question": "增容要多久我叫【姓名】",
            "kind": "low_confidence",
            "best_entry_id": "capacity-increase",
            "best_score": 0.52,
            "first_asked_at": "2026-12-04T02:00:00+00:00",
            "last_asked_at": "2026-12-04T02:00:00+00:00",
            "times_asked": 1,
        }
    ]


def test_a_gap_s_question_is_sealed_at_rest(sqlite_engine: Engine) -> None:
    GapLog(sqlite_engine, clock=FixedClock(START)).record("楼下的铺子想加容量", "unanswered", None, None)
    with sqlite_engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT question FROM assistant_gaps")).scalar_one()
        [gap] = list_gaps(conn)
    assert stored.startswith("enc:v1:") and "铺子" not in stored
    assert gap.question == "楼下的铺子想加容量"


def test_the_command_changes_nothing_in_a_database_without_gaps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    assert main(["assistant", "gaps", "--db-url", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    engine = create_engine(url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    with pytest.raises(SystemExit):
        main(["assistant", "gaps", "--db-url", url, "--limit", "0"])
    assert "0 is not at least 1" in capsys.readouterr().err
