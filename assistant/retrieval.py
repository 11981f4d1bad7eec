"""Finding the knowledge entry a Chinese question asks about, or none close enough to answer with.

Two scores, each from 0 to 1, are blended per entry (CLASSIFIER_WEIGHT):

- A classifier trained when the index is built: logistic regression over TF-IDF features of jieba's words
  and of single characters and character pairs, one class per entry (its question, each paraphrase, its
  tags) and one per declined topic (its examples). It learns from all of an entry's phrasings together
  which words tell it from the others, and its probabilities sum to 1 over entries and topics.
- BM25 over the same words and overlapping character pairs. Each entry is two documents: its question,
  paraphrases and tags together, and its answer, which brings words no paraphrase has and weighs less
  (ANSWER_WEIGHT); each declined topic is one document of its examples. A BM25 score grows with the length
  and rarity of the question's words, so each is divided by the score the question would get against a
  document made of exactly its own words: near 1 means every word of the question was found. Words the
  base never uses count as the rarest and lower that share. The classifier always leans to some class, so
  a question far from the base can still reach an entry's threshold when its few known words point there:
  the declined topics are what refuse the kinds of question customers ask beside the base.

The declined topics together (the classifier's summed probability, BM25's best topic) compete with the best
entry: a question closer to them is refused, as is one whose best entry scores below ANSWER_THRESHOLD.
jieba keeps the trade's words whole (报装, 增容, 供电方案) and the words customers use interchangeably are
folded into one (电表 / 表计 / 电能表). The blend against either score alone, on
tests/data/assistant/dev.yaml: `python -m bench.assistant_methods` (figures in the README).
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
from dataclasses import dataclass

import bm25s
import jieba
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from assistant.knowledge import DeclinedTopic, KnowledgeBase, KnowledgeEntry, KnowledgeMatch

# Tuned on tests/data/assistant/dev.yaml: below ANSWER_THRESHOLD the question is refused; of the dev answers
# scoring CONFIDENT_THRESHOLD or more, 98% were right.
ANSWER_THRESHOLD = 0.20
CONFIDENT_THRESHOLD = 0.45
# The classifier's probability's share of an entry's score; BM25's is the rest.
CLASSIFIER_WEIGHT = 0.7
# Inverse regularisation of the classifier: high, as each class has few short examples to fit.
CLASSIFIER_C = 30.0
# How much an entry's tags count as an example of it, beside its question and each paraphrase (1).
TAGS_WEIGHT = 0.5
# How much the answer's text counts in BM25 beside the entry's question, paraphrases and tags (weight 1).
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
    text's overlapping character pairs (for BM25; the classifier takes the words and its own characters)."""

    def __init__(
        self,
        synonyms: Iterable[tuple[str, ...]] = SYNONYMS,
        stopwords: frozenset[str] = STOPWORDS,
    ) -> None:
        self._canonical: Mapping[str, str] = {word: group[0] for group in synonyms for word in group}
        self._stopwords = stopwords
        self._tokenizer = _jieba()

    def terms(self, text: str) -> list[str]:
        characters = [character for character in normalise(text) if _WORD.match(character)]
        pairs = [_PAIR + first + second for first, second in itertools.pairwise(characters)]
        return self.words(text) + pairs

    def words(self, text: str) -> list[str]:
        terms: list[str] = []
        for word in self._tokenizer.lcut(normalise(text)):
            if word in self._canonical:
                terms.append(self._canonical[word])
            else:
                # A long word also yields the words in it (分布式光伏: 分布式, 光伏), as jieba's search mode.
                terms.extend(self._tokenizer.lcut_for_search(word))
        return [term for term in terms if _WORD.search(term) and term not in self._stopwords]


def normalise(text: str) -> str:
    """Full-width letters and digits as half-width, and lower case: how every text is compared."""
    return unicodedata.normalize("NFKC", text).casefold()


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
        if not self._indexed or not terms:
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


class _Classifier:
    """Logistic regression over TF-IDF of words and of characters, trained on weighted examples (text,
    class, weight); the probability of each class, numbered 0 to class_count - 1, for a question."""

    def __init__(self, analyzer: Analyzer, examples: list[tuple[str, int, float]], class_count: int) -> None:
        self._class_count = class_count
        self._pipeline: Pipeline | None = None
        if len({label for _, label, _ in examples}) < 2:
            return
        features = FeatureUnion(
            [
                ("words", TfidfVectorizer(analyzer=analyzer.words, sublinear_tf=True)),
                (
                    "characters",
                    TfidfVectorizer(
                        analyzer="char_wb", ngram_range=(1, 2), preprocessor=normalise, sublinear_tf=True
                    ),
                ),
            ]
        )
        # sag converges in a fraction of lbfgs's time on these sparse, row-normalised features; its seed
        # makes two indexes of one base score alike.
        model = LogisticRegression(C=CLASSIFIER_C, solver="sag", tol=1e-3, max_iter=1000, random_state=0)
        self._pipeline = Pipeline([("features", features), ("model", model)])
        self._pipeline.fit(
            [text for text, _, _ in examples],
            [label for _, label, _ in examples],
            model__sample_weight=np.array([weight for _, _, weight in examples]),
        )

    def probabilities(self, question: str) -> np.ndarray | None:
        """None when there were fewer than two classes to tell apart: the classifier knows nothing then."""
        if self._pipeline is None:
            return None
        probabilities = np.zeros(self._class_count)
        probabilities[self._pipeline.classes_] = self._pipeline.predict_proba([question])[0]
        return probabilities


class KnowledgeIndex:
    """A knowledge base's entries and declined topics, indexed once (in about a second, jieba's dictionary
    included); a search takes one or two milliseconds."""

    def __init__(
        self,
        base: KnowledgeBase,
        *,
        answer_threshold: float = ANSWER_THRESHOLD,
        confident_threshold: float = CONFIDENT_THRESHOLD,
        classifier_weight: float = CLASSIFIER_WEIGHT,
        analyzer: Analyzer | None = None,
    ) -> None:
        if not 0 <= answer_threshold <= confident_threshold <= 1:
            raise ValueError("thresholds must satisfy 0 <= answer_threshold <= confident_threshold <= 1")
        self.base = base
        self.answer_threshold = answer_threshold
        self.confident_threshold = confident_threshold
        self.classifier_weight = classifier_weight
        self._analyzer = analyzer or Analyzer()
        self._entries = base.entries
        self._declined = base.declined
        terms = self._analyzer.terms
        self._asked = _Field(
            [terms(" ".join((e.question, *e.paraphrases, *e.tags))) for e in base.entries]
            + [terms(" ".join(topic.examples)) for topic in base.declined]
        )
        self._answered = _Field([terms(entry.answer) for entry in base.entries] + [[] for _ in base.declined])
        self._classifier = _Classifier(
            self._analyzer, _examples(base.entries, base.declined), len(base.entries) + len(base.declined)
        )

    def search(self, question: str) -> KnowledgeMatch | None:
        """The entry the question asks about, or None when no entry is close enough to answer with, the
        question is closer to the declined topics, or it is made of stop words only (请问怎么办呢)."""
        scores = self._scores(question)
        if scores is None or not scores.has_words:
            return None
        best = self._best_entry(scores)
        if best is None or best.score < self.answer_threshold or scores.declined >= best.score:
            return None
        return best

    def closest(self, question: str) -> KnowledgeMatch | None:
        """The best-scoring entry whatever its score and the declined topics (None when the question has no
        term at all or the base has no entry); confident is judged as in search."""
        scores = self._scores(question)
        return None if scores is None else self._best_entry(scores)

    def _scores(self, question: str) -> _Scores | None:
        terms = list(dict.fromkeys(self._analyzer.terms(question)))
        if not terms or not (self._entries or self._declined):
            return None
        bm25 = (self._asked.scores(terms) + ANSWER_WEIGHT * self._answered.scores(terms)) / (
            1 + ANSWER_WEIGHT
        )
        count = len(self._entries)
        best_topic_bm25 = float(bm25[count:].max(initial=0.0))
        probabilities = self._classifier.probabilities(question)
        if probabilities is None:
            blended, declined = bm25, best_topic_bm25
        else:
            weight = self.classifier_weight
            blended = weight * probabilities + (1 - weight) * bm25
            # The topics' probabilities summed: a question may sit between two of them (an outage's bill).
            topics_probability = float(probabilities[count:].sum())
            declined = weight * topics_probability + (1 - weight) * best_topic_bm25
        return _Scores(
            has_words=bool(self._analyzer.words(question)), entries=blended[:count], declined=declined
        )

    def _best_entry(self, scores: _Scores) -> KnowledgeMatch | None:
        if not self._entries:
            return None
        number = int(np.argmax(scores.entries))
        score = float(scores.entries[number])
        if score <= 0:
            return None
        return KnowledgeMatch(self._entries[number], score, confident=score >= self.confident_threshold)


@dataclass(frozen=True)
class _Scores:
    """A question's score (0 to 1) against each entry and against the declined topics together, and whether
    it has a word other than stop words (characters alone match anything)."""

    has_words: bool
    entries: np.ndarray
    declined: float


def _examples(
    entries: tuple[KnowledgeEntry, ...], declined: tuple[DeclinedTopic, ...]
) -> list[tuple[str, int, float]]:
    """The classifier's training examples (text, class, weight): each entry's question, paraphrases and
    tags, then each declined topic's examples, the classes numbered in that order."""
    examples: list[tuple[str, int, float]] = []
    for number, entry in enumerate(entries):
        examples.extend((text, number, 1.0) for text in (entry.question, *entry.paraphrases))
        if entry.tags:
            examples.append((" ".join(entry.tags), number, TAGS_WEIGHT))
    for number, topic in enumerate(declined, start=len(entries)):
        examples.extend((text, number, 1.0) for text in topic.examples)
    return examples
