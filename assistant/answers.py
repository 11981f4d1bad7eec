"""The assistant's answers in plain Chinese: a case's progress, a request for the lookup's two keys, and the
answers that look nothing up (not found, no knowledge entry close enough).

A progress answer is written from api/progress.py's Progress only, so of personal data it holds no more
than the progress lookup gives: the customer's name masked (张*). It says the current stage and its
responsible unit, the working days used and left against the stage's limit and the end-to-end commitment,
the deadlines, and whether the case is at risk or overdue. A date counted over days whose holiday
arrangement is not published yet is marked as an estimate.
"""

from __future__ import annotations

from datetime import date

from assistant.intent import ProgressQuestion
from workflow.progress import Progress
from workflow.workdays import local_date

PROVISIONAL = "（节假日安排未公布，日期为暂估）"
NOT_FOUND = "未查询到该申请：请核对申请编号和验证码（登记手机号的后4位）。"
WHERE_THE_NUMBER_IS = "申请编号在受理回执和受理短信中，也可在“网上国网”App 的办电记录里查看"
WHAT_THE_CODE_IS = "验证码是您办电时登记的手机号的后4位数字"
OUTCOMES = {"energised": "已装表送电", "withdrawn": "已撤销", "cancelled": "已终止"}


def day_text(day: date) -> str:
    """A date as customers read it: 2026年12月8日."""
    return f"{day.year}年{day.month}月{day.day}日"


def _dated(day: date, provisional: bool) -> str:
    return day_text(day) + (PROVISIONAL if provisional else "")


def progress_answer(found: Progress) -> str:
    """Where the application stands, in a few sentences."""
    holder = f"（申请编号 {found.application_no}" + (
        f"，户名 {found.customer_name}）" if found.customer_name else "）"
    )
    if found.status != "open":
        outcome = OUTCOMES.get(found.outcome or "", "已办结")
        closed = f"，办结日期 {day_text(local_date(found.closed_at))}" if found.closed_at else ""
        return f"您的申请{holder}{outcome}{closed}。"
    sentences = [
        f"您的申请{holder}目前在“{found.stage_name or found.stage or '—'}”环节，"
        f"责任单位：{found.responsible or '—'}。"
    ]
    stage = _stage_sentence(found)
    if stage:
        sentences.append(stage)
    sentences.append(_end_to_end_sentence(found))
    return "".join(sentences)


def _stage_sentence(found: Progress) -> str | None:
    limit, used, left = found.stage_limit_days, found.stage_working_days_used, found.stage_working_days_left
    if limit is None or used is None or left is None or found.stage_deadline is None:
        return None
    due = _dated(found.stage_deadline, found.stage_deadline_provisional)
    if _customer_works(found):
        # The customer's own works: their time limit is the customer's, not a commitment of the utility.
        text = f"本环节是您方实施的受电工程，参考工期 {limit} 个工作日，已用 {used} 个工作日，"
        if found.overdue:
            return text + f"已超出 {-left} 个工作日；完工后请及时联系我们安排后续环节。"
        return text + f"还剩 {left} 个工作日，参考完工日 {due}。"
    text = f"本环节时限 {limit} 个工作日，已用 {used} 个工作日，"
    if found.overdue:
        return text + f"已超过承诺时限 {-left} 个工作日（应于 {due} 前完成），我们已督办。"
    text += f"还剩 {left} 个工作日，应于 {due} 前完成。"
    if found.at_risk:
        text += "本环节已临近时限，我们会抓紧办理。"
    return text


def _customer_works(found: Progress) -> bool:
    """Whether the open case is in the customer's own works: the only time its end-to-end clock stops."""
    return found.end_to_end_status == "paused"


def _end_to_end_sentence(found: Progress) -> str:
    commitment = found.end_to_end_commitment_days
    if found.end_to_end_deadline is None:
        return f"整个办电承诺 {commitment} 个工作日，您方施工期间不计入，目前暂停计时。"
    used, left = found.end_to_end_working_days_used, found.end_to_end_working_days_left
    due = _dated(found.end_to_end_deadline, found.end_to_end_provisional)
    text = f"整个办电承诺 {commitment} 个工作日，已用 {used} 个工作日，"
    if found.end_to_end_status == "overdue" and left is not None:
        return text + f"已超过承诺时限 {-left} 个工作日（应于 {due} 前通电），我们已督办。"
    text += f"还剩 {left} 个工作日，最晚 {due} 前完成通电。"
    if found.end_to_end_status == "at_risk":
        text += "整体进度已临近时限，我们会抓紧办理。"
    return text


def ask_for_number_answer(question: ProgressQuestion) -> str:
    """What the customer still has to give for a lookup, and where to find it."""
    if question.application_no is None and question.code is None:
        return (
            "查询办电进度，请告诉我申请编号和验证码。"
            f"{WHERE_THE_NUMBER_IS}；{WHAT_THE_CODE_IS}。例如：申请编号 2026112000001，验证码 1111。"
        )
    if question.code is None:
        return f"请再告诉我验证码：{WHAT_THE_CODE_IS}。"
    return f"请再告诉我申请编号：{WHERE_THE_NUMBER_IS}。"


def refusal_answer(hotline: str) -> str:
    """The answer when no knowledge entry is close enough: no guess, the hotline instead."""
    return (
        "抱歉，这个问题我没有把握回答。我可以解答办电流程、所需资料、办理时限和相关政策，"
        f"也可以帮您查询申请进度。其他问题请拨打供电服务热线 {hotline}。"
    )
