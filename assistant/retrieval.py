"""Finding the knowledge entry a Chinese question asks about, or none close enough to answer with.

Questions and each entry's phrasings (its question and every paraphrase) are cut into words by jieba, with
a small dictionary of the trade's words (报装, 增容, 供电方案...) so they stay whole, and the words customers
use interchangeably folded into one (电表 / 表计 / 电能表). Every phrasing is a BM25 document; an entry scores
the best of its phrasings.

A BM25 score grows with the length and rarity of the question's words, so it is divided by the score the
question would get against a phrasing made of exactly its own words: 1 means every word of the question
was found, as rare in the knowledge base as it is, in a phrasing no longer than the question. Words the
knowledge base never uses count as the rarest, so a question about something it does not cover (电费,
停电) scores low, and one threshold means the same for short and long questions.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping

import bm25s
import jieba
import numpy as np

from assistant.knowledge import KnowledgeBase, KnowledgeMatch

# Tuned on tests/data/assistant/dev.yaml (see the README's assistant section for the figures).
ANSWER_THRESHOLD = 0.5
CONFIDENT_THRESHOLD = 0.7
# BM25's usual constants; phrasings are a sentence long, so length normalisation matters little.
K1 = 1.5
B = 0.75

# Words of the trade that jieba's general dictionary would cut apart, kept whole.
DOMAIN_WORDS = (
    "业扩", "报装", "办电", "用电", "通电", "送电", "接电", "来电", "装表", "电表", "电能表", "表计", "增容",
    "减容", "暂停", "销户", "过户", "更名", "迁址", "移表", "改压", "改类", "临时用电", "充电桩", "光伏",
    "并网", "三零", "三省", "供电方案", "方案答复", "答复单", "现场勘查", "勘查", "竣工检验", "竣工验收",
    "中间检查", "设计审查", "供用电合同", "高可靠性供电费", "工作日", "调休", "容缺受理", "一证受理",
    "双电源", "重要用户", "单相", "三相", "低压", "高压", "千伏", "千瓦", "受电工程", "外部工程",
    "网上国网", "营业厅", "居民", "小微企业", "电源", "容量", "电压", "电价", "线路",
)  # fmt: skip
# Words customers use for the same thing, folded into the first of each group.
SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("电表", "电能表", "表计", "电度表", "表"),
    ("通电", "送电", "接电", "来电", "供上电", "有电"),
    ("报装", "办电", "申请用电", "用电申请", "装电", "新装"),
    ("更名", "过户", "改名"),
    ("费用", "收费", "交钱", "花钱", "付费", "钱", "费"),
    ("多久", "多长时间", "几天", "多少天", "时间", "时限"),
    ("材料", "资料", "证件", "手续"),
    ("充电桩", "充电柱", "充电器"),
    ("光伏", "太阳能"),
    ("竣工检验", "竣工验收", "验收"),
    ("现场勘查", "勘查", "勘察", "踏勘"),
)
# Words that say nothing about which entry a question asks about.
STOPWORDS = frozenset({
    "的", "了", "吗", "呢", "吧", "啊", "呀", "么", "是", "在", "和", "与", "及", "或", "要", "需要",
    "可以", "能", "能不能", "会", "怎么", "怎样", "如何", "咋", "什么", "哪些", "我", "我们", "我家", "你",
    "你们", "请问", "一下", "下", "这个", "那个", "有", "没有", "都", "就", "还", "也", "该", "应该", "想",
    "请", "问", "办理", "办", "一个", "个", "多少", "啥", "怎么办", "怎么样", "为什么", "哪里", "哪个",
    "时候",
})  # fmt: skip
_WORD = re.compile(r"\w")


class Analyzer:
    """Turns a text into the terms the index compares: jieba's words, folded, without stop words."""

    def __init__(
        self,
        synonyms: Iterable[tuple[str, ...]] = SYNONYMS,
        stopwords: frozenset[str] = STOPWORDS,
    ) -> None:
        self._canonical: Mapping[str, str] = {word: group[0] for group in synonyms for word in group}
        self._stopwords = stopwords
        self._tokenizer = _jieba()

    def terms(self, text: str) -> list[str]:
        normalised = unicodedata.normalize("NFKC", text).casefold()
        terms: list[str] = []
        for word in self._tokenizer.lcut(normalised):
            if word in self._canonical:
                terms.append(self._canonical[word])
            else:
                # A long word also yields the words in it (分布式光伏: 分布式, 光伏), as jieba's search mode.
                terms.extend(
                    self._canonical.get(part, part) for part in self._tokenizer.lcut_for_search(word)
                )
        return [term for term in terms if _WORD.search(term) and term not in self._stopwords]


_JIEBA_LOCK = threading.Lock()
_JIEBA: list[jieba.Tokenizer] = []


def _jieba() -> jieba.Tokenizer:
    """jieba's tokenizer with the trade's words: its dictionary is loaded once per process (about a second)
    and without the log lines jieba writes to stderr by default."""
    with _JIEBA_LOCK:
        if not _JIEBA:
            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            for word in DOMAIN_WORDS + tuple(word for group in SYNONYMS for word in group):
                tokenizer.add_word(word)
            _JIEBA.append(tokenizer)
        return _JIEBA[0]


class KnowledgeIndex:
    """A BM25 index of every phrasing of a knowledge base, built once; search is about a millisecond."""

    def __init__(
        self,
        base: KnowledgeBase,
        *,
        answer_threshold: float = ANSWER_THRESHOLD,
        confident_threshold: float = CONFIDENT_THRESHOLD,
        analyzer: Analyzer | None = None,
    ) -> None:
        if not 0 <= answer_threshold <= confident_threshold <= 1:
            raise ValueError("thresholds must satisfy 0 <= answer_threshold <= confident_threshold <= 1")
        self.answer_threshold = answer_threshold
        self.confident_threshold = confident_threshold
        self._analyzer = analyzer or Analyzer()
        self._owners: list[int] = []
        documents: list[list[str]] = []
        for number, entry in enumerate(base.entries):
            for phrasing in (entry.question, *entry.paraphrases):
                terms = self._analyzer.terms(phrasing)
                if terms:
                    documents.append(terms)
                    self._owners.append(number)
        self._entries = base.entries
        self._owner_array = np.asarray(self._owners, dtype=np.intp)
        self._documents = len(documents)
        self._frequency = Counter(term for terms in documents for term in set(terms))
        self._average_length = sum(map(len, documents)) / max(len(documents), 1)
        self._bm25 = bm25s.BM25(k1=K1, b=B, method="lucene")
        if documents:
            self._bm25.index(documents, show_progress=False)

    def search(self, question: str) -> KnowledgeMatch | None:
        """The entry the question asks about, or None when no entry is close enough to answer with."""
        best = self.closest(question)
        if best is None or best.score < self.answer_threshold:
            return None
        return best

    def closest(self, question: str) -> KnowledgeMatch | None:
        """The best-scoring entry whatever its score (None only when no term of the question is known);
        confident is judged as in search."""
        terms = list(dict.fromkeys(self._analyzer.terms(question)))
        if not terms or not self._documents:
            return None
        scores = np.asarray(self._bm25.get_scores(terms), dtype=np.float64)
        per_entry = np.zeros(len(self._entries))
        np.maximum.at(per_entry, self._owner_array, scores)
        number = int(np.argmax(per_entry))
        score = min(float(per_entry[number]) / self._ideal_score(terms), 1.0)
        if score <= 0:
            return None
        return KnowledgeMatch(self._entries[number], score, confident=score >= self.confident_threshold)

    def _ideal_score(self, terms: list[str]) -> float:
        """The BM25 score of the question against a phrasing of exactly its own words."""
        length_factor = K1 * (1 - B + B * len(terms) / self._average_length)
        return sum(self._idf(term) / (1 + length_factor) for term in terms)

    def _idf(self, term: str) -> float:
        frequency = self._frequency.get(term, 0)
        return math.log(1 + (self._documents - frequency + 0.5) / (frequency + 0.5))
