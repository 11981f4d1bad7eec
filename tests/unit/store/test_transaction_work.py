"""The work of one transaction: memo and closing steps, forgotten on leaving, nested per savepoint."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.transaction_work import current_work, transaction_work


def test_steps_run_once_in_order_when_the_work_is_finished() -> None:
    engine = sa.create_engine("sqlite://")
    ran: list[str] = []
    with engine.connect() as conn:
        assert current_work(conn) is None
        with transaction_work(conn) as work:
            assert current_work(conn) is work
            work.before_end(lambda _: ran.append("first"))
            work.before_end(lambda _: ran.append("second"))
            assert ran == []
            work.finish(conn)
            work.finish(conn)
        assert current_work(conn) is None
    engine.dispose()
    assert ran == ["first", "second"]


def test_a_nested_work_has_its_own_memo_and_the_outer_one_comes_back() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn, transaction_work(conn) as outer:
        outer.memo["revision"] = 1
        with transaction_work(conn) as inner:
            assert current_work(conn) is inner and "revision" not in inner.memo
        assert current_work(conn) is outer and outer.memo == {"revision": 1}
    engine.dispose()


def test_work_left_by_an_error_is_forgotten_without_running_its_steps() -> None:
    engine = sa.create_engine("sqlite://")
    ran: list[Connection] = []
    with engine.connect() as conn:
        try:
            with transaction_work(conn) as work:
                work.before_end(ran.append)
                raise RuntimeError("the handler failed")
        except RuntimeError:
            pass
        assert current_work(conn) is None
    engine.dispose()
    assert ran == []
