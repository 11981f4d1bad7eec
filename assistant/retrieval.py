"""Finding the knowledge entry a Chinese question asks about, or none close enough to answer with.

Texts are cut into words by jieba, with a small dictionary of the trade's words (报装, 增容, 供电方案...) so
they stay whole and the words customers use interchangeably folded into one (电表 / 表计 / 电能表), and
into overlapping character pairs as well, which match where segmentation differs (勘察 / 勘查点, 临电).
Each entry is two BM25 documents: its question, paraphrases and tags together, and its answer. The answer
brings the words a customer may use that no paraphrase has; it weighs less (ANSWER_WEIGHT).

A BM25 score grows with the length and rarity of the question's words, so each is divided by the score the
question would get against a document made of exactly its own words: near 1 means every word of the
question was found, as rare as it is. Words the knowledge base never uses count as the rarest, so a question
about something it does not cover (电费, 停电) scores low, and one threshold means the same for short and
long questions. Measured on tests/data/assistant/dev.yaml against other candidates: see the README.
"""

from __future__ import annotations

import itertools
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

# Tuned on tests/data/assistant/dev.yaml (see the README's assistant section for the figures): below
# ANSWER_THRESHOLD the question is refused; from CONFIDENT_THRESHOLD up no dev question without an entry
# scored.
ANSWER_THRESHOLD = 0.20
CONFIDENT_THRESHOLD = 0.30
# How much the answer's text counts beside the entry's question, paraphrases and tags (weight 1).
ANSWER_WEIGHT = 0.3
# BM25's usual k1; b below the usual 0.75, as an entry with many paraphrases is no less relevant for it.
K1 = 1.5
B = 0.3

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
# Marks a character pair apart from a word of the same two characters.
_PAIR = "\u00b7"


class Analyzer:
    """Turns a text into the terms the index compares: jieba's words, folded, without stop words, and the
    text's overlapping character pairs."""

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
                terms.extend(self._tokenizer.lcut_for_search(word))
        words = [term for term in terms if _WORD.search(term) and term not in self._stopwords]
        characters = [character for character in normalised if _WORD.match(character)]
        pairs = [_PAIR + first + second for first, second in itertools.pairwise(characters)]
        return words + pairs


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


class _Field:
    """One BM25 document per entry, scoring a question from 0 to 1 against each entry."""

    def __init__(self, documents: list[list[str]]) -> None:
        self._count = len(documents)
        self._frequency = Counter(term for terms in documents for term in set(terms))
        self._average_length = max(sum(map(len, documents)) / max(self._count, 1), 1.0)
        self._bm25 = bm25s.BM25(k1=K1, b=B, method="lucene")
        # bm25s cannot index documents that are all empty; a field without terms scores 0 throughout.
        self._indexed = any(documents)
        if self._indexed:
            self._bm25.index(documents, show_progress=False)

    def scores(self, terms: list[str]) -> np.ndarray:
        if not self._indexed:
            return np.zeros(self._count)
        raw = np.asarray(self._bm25.get_scores(terms), dtype=np.float64)
        return np.minimum(raw / self._ideal_score(terms), 1.0)

    def _ideal_score(self, terms: list[str]) -> float:
        """The BM25 score of the question against a document of exactly its own words."""
        length_factor = K1 * (1 - B + B * len(terms) / self._average_length)
        return sum(self._idf(term) / (1 + length_factor) for term in terms)

    def _idf(self, term: str) -> float:
        frequency = self._frequency.get(term, 0)
        return math.log(1 + (self._count - frequency + 0.5) / (frequency + 0.5))


class KnowledgeIndex:
    """A BM25 index of a knowledge base's entries, built once; a search takes about a millisecond."""

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
        self._entries = base.entries
        terms = self._analyzer.terms
        self._asked = _Field([terms(" ".join((e.question, *e.paraphrases, *e.tags))) for e in base.entries])
        self._answered = _Field([terms(entry.answer) for entry in base.entries])

    def search(self, question: str) -> KnowledgeMatch | None:
        """The entry the question asks about, or None when no entry is close enough to answer with."""
        best = self.closest(question)
        if best is None or best.score < self.answer_threshold:
            return None
        return best

    def closest(self, question: str) -> KnowledgeMatch | None:
        """The best-scoring entry whatever its score (None when no term of the question is known or the
        base is empty); confident is judged as in search."""
        terms = list(dict.fromkeys(self._analyzer.terms(question)))
        if not terms or not self._entries:
            return None
        scores = (self._asked.scores(terms) + ANSWER_WEIGHT * self._answered.scores(terms)) / (
            1 + ANSWER_WEIGHT
        )
        number = int(np.argmax(scores))
        score = float(scores[number])
        if score <= 0:
            return None
        return KnowledgeMatch(self._entries[number], score, confident=score >= self.confident_threshold)
