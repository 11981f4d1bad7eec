"""Progress questions (answered from the case) against every other question (the knowledge base)."""

from __future__ import annotations

import pytest

from assistant.intent import ProgressQuestion, progress_question


@pytest.mark.parametrize(
    "text",
    [
        "我的申请到哪一步了",
        "什么时候能通电",
        "我家报装的电什么时候能送电?",
        "帮我查一下进度",
        "我们公司的报装办到哪了",
        "现在到哪个环节了",
        "我申请了半个月了怎么还没装表",
        "我家的报装多久能通电",
        "查询一下我的业扩进度",
        "我们厂的电哪天能接上",
        "我的增容申请审批下来了没有",
        "我提交的申请是不是被退回了",
        "我家改类的申请弄好了没",  # whether a step is done, passed, out or in force
        "我的竣工检验结果出来没有",
        "我那个光伏并网申请批准了吗",
        "我申请的减容生效了吗",
        "前几天交的报装资料审核通过没有",  # a submission made at some time is the customer's own
        "我的业扩申请现在是什么状态",
        "我申请的临时用电啥时候能办好",
    ],
)
def test_own_progress_wording_is_a_progress_question(text: str) -> None:
    assert progress_question(text) == ProgressQuestion(application_no=None, code=None)


@pytest.mark.parametrize(
    "text",
    [
        "怎么查进度",
        "在哪里可以查询报装进度",
        "办电进度用什么方式查看",
        "申请进度怎么查",
        "居民新装一般多久能通电",
        "高压用户送电需要多长时间",
        "报装流程有哪些环节",
        "申请用电要交钱吗",
        "电费怎么交",
        "可以在这里查办电进度吗,要填什么",
        "我是租户,报装要准备什么材料",
        "以后不用电了,能销户吗",
        "查询进度的页面要输入什么",  # what a lookup asks for
        "怎么查询我的报装办到哪一步了",  # how to look up, though about one's own application
        "居民报装最晚什么时候装表",  # the limit for everyone
        "进度里写的中间检查是什么意思",
        "业扩进度查询",
        "换了手机还能查到申请进度吗",
        "装表是在哪个阶段",  # when a step comes, for everyone
        "进度一个月没动怎么办",  # what to do when one is late: the overdue entry
        "外卖到哪了",  # nothing about a supply
    ],
)
def test_general_questions_are_not_progress_questions(text: str) -> None:
    assert progress_question(text) is None


def test_the_application_number_and_the_code_are_read_from_the_text() -> None:
    question = progress_question("申请编号2611200001234,验证码5678,到哪一步了")
    assert question == ProgressQuestion(application_no="2611200001234", code="5678")


def test_an_application_number_alone_makes_it_a_progress_question() -> None:
    assert progress_question("2611200001234 4321") == ProgressQuestion("2611200001234", "4321")


def test_full_width_digits_are_read_as_digits() -> None:
    assert progress_question("申请号２６１１２００００１２３４到哪了") == ProgressQuestion(
        "2611200001234", None
    )


def test_a_mobile_number_is_not_an_application_number() -> None:
    assert progress_question("我的手机13912345678,申请到哪一步了") == ProgressQuestion(None, None)


def test_a_cued_code_is_preferred_over_other_four_digit_runs() -> None:
    question = progress_question("申请号2611200001234 房号1201 手机尾号0099 进度如何")
    assert question == ProgressQuestion("2611200001234", "0099")


@pytest.mark.parametrize("text", ["2025年申请的,2611200001234,到哪了", "2611200001234 装了3000瓦 到哪了"])
def test_years_and_amounts_are_not_codes(text: str) -> None:
    question = progress_question(text)
    assert question is not None and question.code is None


def test_a_lone_four_digit_run_without_a_number_is_no_code() -> None:
    assert progress_question("我的申请到哪一步了 1234") == ProgressQuestion(None, None)


def test_a_cued_code_without_a_number_is_kept() -> None:
    assert progress_question("我的申请到哪一步了,验证码1234") == ProgressQuestion(None, "1234")


def test_asking_how_to_look_up_ones_own_application_is_still_own_progress() -> None:
    assert progress_question("我的申请怎么查进度,编号2611200001234") == ProgressQuestion(
        "2611200001234", None
    )


def test_asking_for_ones_own_application_to_be_looked_up_is_progress() -> None:
    assert progress_question("怎么查不到,麻烦帮我查一下我的申请到哪了") == ProgressQuestion(None, None)


@pytest.mark.parametrize(
    "text",
    [
        "我家户号3701234567电费怎么交",
        "银行卡6222021234567890123能代扣电费吗",
        "身份证410102199001011234能办电吗",
        "20261120停电了是怎么回事",
    ],
)
def test_other_numbers_of_the_customer_are_no_application_number(text: str) -> None:
    assert progress_question(text) is None
