"""The retrieval methods' comparison counts every question but the progress ones, for each method."""

from __future__ import annotations

from pathlib import Path

from bench.assistant_methods import METHODS, compare


def test_each_method_is_measured_on_the_same_questions(tmp_path: Path) -> None:
    questions = tmp_path / "questions.yaml"
    questions.write_text(
        "questions:\n"
        "  - {q: 办电要不要交钱, expect: fees}\n"
        "  - {q: 明天会下雨吗, expect: none}\n"
        "  - {q: 我的申请到哪一步了, expect: progress}\n",
        encoding="utf-8",
    )
    figures = compare(questions)
    assert [item.method for item in figures] == list(METHODS)
    for item in figures:
        assert (item.evaluation.answerable, item.evaluation.unanswerable) == (1, 1)
        assert item.evaluation.progress_total == 0
