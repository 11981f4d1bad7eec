"""Whether a customer's question asks about the progress of their own application (and which one).

A progress question is answered from the case, every other question from the knowledge base. The line
between them: "我的申请到哪一步了" or "什么时候能通电" asks about the customer's own application; "怎么查进度"
asks how lookups work in general and is the knowledge entry progress-howto. An application number in the
text always makes it the customer's own application.

Application numbers are long digit runs (the marketing system's are 13 digits: yymmdd and a sequence); an
11-digit run that reads as a mainland mobile number is not one, nor a run the text names as something else
(户号, 账号, 卡号, 身份证, 电话, a date). The verification code is the last 4 digits
of the registered mobile: a separate 4-digit run, preferably after 验证码 / 尾号 / 后四位.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MIN_APPLICATION_DIGITS = 8
MAX_APPLICATION_DIGITS = 20
CODE_DIGITS = 4

_DIGIT_RUN = re.compile(r"\d+", re.ASCII)
_MOBILE = re.compile(r"1[3-9]\d{9}", re.ASCII)
# A digit run after one of these is another number of the customer's, not an application number.
_OTHER_NUMBER_CUE = re.compile(
    r"(户号|用户号|客户号|账号|帐号|账户|帐户|卡号|银行卡|身份证(号|号码)?|证件号|电话|手机号?|表号|发票号)\D{0,3}$"
)
# Eight digits that read as a date (20261120): a day, not an application.
_DATE = re.compile(r"(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])", re.ASCII)
_CODE_CUE = re.compile(r"(验证码|校验码|尾号|后四位|后4位|末四位|末4位|code)\D{0,4}$", re.IGNORECASE)
# A 4-digit run followed by one of these is a year, an amount or a size, never a code.
_NOT_A_CODE_AFTER = re.compile(r"^\s*(年|月|日|元|块|天|个|户|度|瓦|千|万|平|米|伏|安|k|K|v|V|w|W|a|A|%)")
_NOT_A_CODE_BEFORE = re.compile(r"(第|共|约|¥|\$)\s*$")

# Wording that asks where an application stands or when its power comes on.
_PROGRESS = re.compile(
    r"到哪一?步|哪一步了|到哪了|到哪儿了|办到哪|走到哪|哪个(环节|阶段|步骤)|什么(环节|阶段)了|"
    r"进度|进展|办好了(吗|没)|办完了(吗|没)|批(下来|了)(吗|没)|审(核|批)(通过)?了(吗|没)|"
    r"怎么还没|为什么还没|还要等多久|还得等多久|还需要多久|"
    r"什么时候(能|可以|才能|会|给)?(通电|送电|接电|来电|装表|装电表|有电|用上电)|"
    r"(几时|哪天)(能|可以|才能)?(通电|送电|接电|来电|装表|有电)"
)
# Wording about the customer's own application (or asking for a lookup), which general wording does not undo:
# its owner (我的, 我那个, 我申请的), or a submission made at some time (上周递的, 刚提交的).
_OWN = re.compile(
    r"我们?(的|家|店|厂|公司|单位|这边|这个|那个|那)|咱(们)?家|我司|我(申请|报装|提交|办理|报|办|交|递)的|"
    r"我(申请|报装|提交)了|(申请|报装|提交)了.{0,6}(还|怎么|为什么)|帮我|给我|替我|麻烦|"
    r"(上周|上个?月|昨天|前天|前几天|刚才?|刚刚|之前|已经)(递|交|提交|报|申请|办)"
)
# With wording about the customer's own application: when something happens, whether it has happened (a
# step done, passed, out, in force), or the state it shows.
_WHEN_OR_STATE = re.compile(
    r"什么时候|啥时候|几时|哪天|还要多久|还得等多久|"
    r"(处理|办理|办|审核|审批|批|受理|排|通过|完成|弄)(完|好|上|下来)?了?(吗|没|没有)|"
    r"(好|完|成|出来|下来|生效|成功|通过|批准)了?(吗|没|没有)|"
    r"(什么|啥)状态|状态(显示|是|变)|"
    r"被退回|退回了|驳回|退件|卡在"
)
_GENERAL_TIME = re.compile(
    r"(多久|多长时间|几天|多少天|多少个?工作日).{0,6}(通电|送电|接电|装表|有电|办完|办好)"
)
# Asking how lookups work: the way, the place, the channel, not one application's state.
_HOWTO = re.compile(
    r"(怎么|怎样|如何|咋|在哪|哪里|哪儿|去哪|什么(地方|渠道|方式|途径|办法)|通过什么|用什么|能不能|可以|可不可以|"
    r"方法|途径|渠道|需要什么|要什么)"
    r".{0,8}(查|看|知道|了解|跟踪)"
    r"|(查|查询|查看).{0,6}(方法|途径|渠道|方式|入口)"
    r"|(进度|进展).{0,4}(怎么|怎样|如何|在哪|哪里|去哪)(查|看|知道|了解)?"
    r"|(填|输|输入|录入|提供)(什么|啥|哪些)|页面|入口|(进度|进展)\s*查询|查询\s*(进度|进展)|能查"
)
# Asking how to look something up, which the customer's own wording does not undo ("怎么查询我的申请到哪了"),
# unless they ask for it to be done for them.
_HOW_TO_LOOK_UP = re.compile(r"(怎么|怎样|如何|咋|在哪|哪里|哪儿|去哪)(才能|可以|能)?(查|看到)")
_REQUEST = re.compile(r"帮我|给我|替我|麻烦")
# Wording about the rules for everyone (limits, what a word means), not one application.
_GENERAL = re.compile(
    r"一般|通常|正常(情况)?|规定|时限|流程|平均|最(晚|迟|快|长|多)|什么意思|啥意思|是啥|是什么|是在哪个|"
    r"哪些(环节|步骤|阶段)|怎么办|怎么回事|找谁"
)
# Without an application number, a question about an application names the supply or a step of it;
# "快递到哪了" does not.
_ABOUT_SUPPLY = re.compile(
    r"电|申请|报装|业扩|表|容|户|勘|方案|验收|检验|检查|工程|手续|业务|环节|阶段|步|进度|进展|受理|审|批|"
    r"编号|资料|材料|合同|桩|光伏|并网"
)


@dataclass(frozen=True)
class ProgressQuestion:
    """A question about the customer's own application, with what the text gives to look it up."""

    application_no: str | None  # digits found in the text that look like an application number
    code: str | None  # a 4-digit verification code, when the text gives one apart from the number


def progress_question(text: str) -> ProgressQuestion | None:
    """The question asks about the customer's own application's progress; None: any other question."""
    normalised = unicodedata.normalize("NFKC", text)
    application_no = _application_no(normalised)
    if application_no is None and not _asks_progress(normalised):
        return None
    return ProgressQuestion(application_no=application_no, code=_code(normalised, application_no))


def _asks_progress(text: str) -> bool:
    if not _ABOUT_SUPPLY.search(text):
        return False
    if _HOWTO.search(text) and not _OWN.search(text):
        return False
    if _HOW_TO_LOOK_UP.search(text) and not _REQUEST.search(text):
        return False
    own = _OWN.search(text) is not None
    if _PROGRESS.search(text):
        return own or not _GENERAL.search(text)
    if own and _WHEN_OR_STATE.search(text):
        return True
    return own and _GENERAL_TIME.search(text) is not None and not _GENERAL.search(text)


def _application_no(text: str) -> str | None:
    for match in _DIGIT_RUN.finditer(text):
        digits = match.group()
        if not MIN_APPLICATION_DIGITS <= len(digits) <= MAX_APPLICATION_DIGITS:
            continue
        if _MOBILE.fullmatch(digits) or _DATE.fullmatch(digits):
            continue
        if _OTHER_NUMBER_CUE.search(text[: match.start()]):
            continue
        return digits
    return None


def _code(text: str, application_no: str | None) -> str | None:
    candidates: list[tuple[bool, str]] = []
    for match in _DIGIT_RUN.finditer(text):
        digits = match.group()
        if len(digits) != CODE_DIGITS:
            continue
        before, after = text[: match.start()], text[match.end() :]
        if _NOT_A_CODE_AFTER.match(after) or _NOT_A_CODE_BEFORE.search(before):
            continue
        candidates.append((_CODE_CUE.search(before) is not None, digits))
    cued = [digits for is_cued, digits in candidates if is_cued]
    if cued:
        return cued[0]
    # Without a cue a lone 4-digit run is taken only beside an application number (the two make a lookup).
    return candidates[0][1] if candidates and application_no is not None else None
