"""A small knowledge base written in the tests, and a way to write one as files."""

from __future__ import annotations

from dataclasses import replace

from assistant.knowledge import DeclinedTopic, KnowledgeBase, KnowledgeEntry


def entry(entry_id: str, question: str, *paraphrases: str) -> KnowledgeEntry:
    return KnowledgeEntry(
        id=entry_id,
        question=question,
        paraphrases=paraphrases,
        answer=f"{entry_id} 的答复",
        tags=(),
        source="供电营业规则",
        file="knowledge/default/test.yaml",
        line=1,
    )


SMALL_BASE = KnowledgeBase(
    province="default",
    hotline="95598",
    entries=(
        entry("fees", "申请用电要收费吗", "报装要交钱吗", "办电有哪些费用"),
        entry("capacity-increase", "怎么申请增容", "变压器容量不够了想加容量", "增加用电容量怎么办理"),
        entry(
            "ev-charger", "家里装充电桩怎么报装", "私人充电桩申请需要什么材料", "小区车位装充电桩要物业同意吗"
        ),
        entry("progress-howto", "怎么查询报装进度", "在哪里查办电进度", "查进度要输入什么"),
        entry("name-transfer", "房子卖了电表怎么过户", "电户更名需要什么材料", "户主换人了怎么办"),
        entry("site-survey", "现场勘查是什么", "勘查的时候本人要在场吗", "现场勘查怎么预约"),
    ),
)


def topic(name: str, *examples: str) -> DeclinedTopic:
    return DeclinedTopic(topic=name, examples=examples, file="knowledge/default/declined.yaml", line=1)


# Questions about electricity that share words with the entries (充电桩, 电表, 过户) but ask something else.
DECLINED_BASE = replace(
    SMALL_BASE,
    declined=(
        topic("tariffs", "一度电多少钱", "峰谷电价怎么算", "充电桩充电的电价是多少", "阶梯电价是怎么收的"),
        topic("bills", "这个月电费怎么这么高", "电费怎么交", "电费账单在哪看", "欠费会停电吗"),
        topic("outages", "家里突然停电了", "小区停电什么时候恢复", "停电了打哪个电话"),
    ),
)
