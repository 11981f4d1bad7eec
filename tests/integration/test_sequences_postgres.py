"""Sequence allocation on PostgreSQL: one upsert per batch, no number handed out twice under contention."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.schema import subject_sequences
from store.sequences import allocate_sequences, next_sequence

pytestmark = pytest.mark.postgres


def test_a_batch_reserves_consecutive_numbers_per_subject(postgres_engine: Engine) -> None:
    with postgres_engine.begin() as conn:
        assert next_sequence(conn, "s|a") == 1
        assert allocate_sequences(conn, {"s|a": 3, "s|b": 2}) == {"s|a": 4, "s|b": 2}
        assert next_sequence(conn, "s|b") == 3


def test_concurrent_batches_on_shared_subjects_never_reuse_a_number(postgres_engine: Engine) -> None:
    rounds, workers = 40, 4
    handed_out: list[tuple[str, int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(rounds):
                # Overlapping subjects in different orders: sorted locking must keep this deadlock-free.
                counts = {f"s|{(offset + n + k) % 5}": k + 1 for k in range(3)}
                with postgres_engine.begin() as conn:
                    last = allocate_sequences(conn, counts)
                with lock:
                    for key, count in counts.items():
                        handed_out.extend(
                            (key, number) for number in range(last[key] - count + 1, last[key] + 1)
                        )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(handed_out) == len(set(handed_out)) == rounds * workers * 6
    with postgres_engine.connect() as conn:
        stored = dict(
            conn.execute(sa.select(subject_sequences.c.subject_key, subject_sequences.c.last_sequence)).all()
        )
    for key, last in stored.items():
        assert sorted(number for subject, number in handed_out if subject == key) == list(range(1, last + 1))
