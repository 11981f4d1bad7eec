"""Loading the knowledge base: entries per province, and every problem reported with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.knowledge import load_knowledge
from ground.errors import ConfigError
from yekuo.config import check_config

DEFAULT_PROVINCE = 'province: default\nname: 全国通用\nhotline: "95598"\n'
FEES = """\
entries:
  - id: fees
    question: 申请用电要收费吗
    paraphrases:
      - 报装要交钱吗
      - 办电收不收费
    answer: 不收取业务费用。
    tags: [费用]
    source: 供电营业规则
"""
SURVEY = """\
entries:
  - id: site-survey
    question: 现场勘查是什么
    paraphrases: [勘查要本人在场吗]
    answer: 供电公司上门查看现场。
    tags: []
    source: 获得电力
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "knowledge" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def errors_of(root: Path, province: str = "default") -> str:
    with pytest.raises(ConfigError) as caught:
        load_knowledge(root, province)
    return str(caught.value)


def test_entries_are_loaded_with_their_file_and_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"default/province.yaml": DEFAULT_PROVINCE, "default/fees.yaml": FEES, "default/b.yaml": SURVEY},
    )
    base = load_knowledge(tmp_path)
    assert base.province == "default" and base.hotline == "95598"
    assert [entry.id for entry in base.entries] == ["site-survey", "fees"]  # files in name order
    fees = base.entries[1]
    assert fees.paraphrases == ("报装要交钱吗", "办电收不收费")
    assert fees.tags == ("费用",)
    assert (fees.file, fees.line) == ("knowledge/default/fees.yaml", 2)


def test_a_province_replaces_default_entries_by_id_and_adds_its_own(tmp_path: Path) -> None:
    own_fees = FEES.replace("不收取业务费用。", "本省不收费。").replace("报装要交钱吗", "本省报装要交钱吗")
    extra = (
        SURVEY.replace("site-survey", "local-only")
        .replace("现场勘查是什么", "本省特有问题")
        .replace("勘查要本人在场吗", "本省特有说法")
    )
    write(
        tmp_path,
        {
            "default/province.yaml": DEFAULT_PROVINCE,
            "default/fees.yaml": FEES,
            "default/survey.yaml": SURVEY,
            "henan/province.yaml": 'province: henan\nname: 河南\nhotline: "95598-1"\n',
            "henan/own.yaml": own_fees,
            "henan/extra.yaml": extra,
        },
    )
    base = load_knowledge(tmp_path, "henan")
    assert base.hotline == "95598-1"
    answers = {entry.id: entry.answer for entry in base.entries}
    assert answers == {
        "site-survey": "供电公司上门查看现场。",
        "fees": "本省不收费。",
        "local-only": "供电公司上门查看现场。",
    }
    assert load_knowledge(tmp_path).hotline == "95598"


def test_an_unknown_province_is_an_error_naming_the_known_ones(tmp_path: Path) -> None:
    write(tmp_path, {"default/province.yaml": DEFAULT_PROVINCE, "default/fees.yaml": FEES})
    assert "unknown province 'hubei': no folder hubei/ (provinces: default)" in errors_of(tmp_path, "hubei")


def test_a_missing_hotline_is_an_error(tmp_path: Path) -> None:
    write(
        tmp_path, {"default/province.yaml": "province: default\nname: 全国通用\n", "default/fees.yaml": FEES}
    )
    assert "knowledge/default/province.yaml:1: missing hotline" in errors_of(tmp_path)


def test_a_province_file_naming_another_province_is_an_error(tmp_path: Path) -> None:
    write(
        tmp_path, {"default/province.yaml": DEFAULT_PROVINCE.replace("province: default", "province: henan")}
    )
    assert (
        "knowledge/default/province.yaml:1: province 'henan' is not the folder's name 'default'"
        in errors_of(tmp_path)
    )


def test_unknown_and_missing_keys_are_reported_at_their_lines(tmp_path: Path) -> None:
    broken = FEES.replace("    tags: [费用]\n", "    tag: [费用]\n").replace("    source: 供电营业规则\n", "")
    write(tmp_path, {"default/province.yaml": DEFAULT_PROVINCE, "default/fees.yaml": broken})
    message = errors_of(tmp_path)
    assert "knowledge/default/fees.yaml:2: entry is missing tags, source" in message
    assert "knowledge/default/fees.yaml:8: unknown key 'tag'" in message


def test_empty_strings_are_reported_at_their_lines(tmp_path: Path) -> None:
    broken = FEES.replace("不收取业务费用。", '""').replace("      - 办电收不收费\n", '      - "  "\n')
    write(tmp_path, {"default/province.yaml": DEFAULT_PROVINCE, "default/fees.yaml": broken})
    message = errors_of(tmp_path)
    assert "knowledge/default/fees.yaml:6: paraphrases: item 2 must be a non-empty string" in message
    assert "knowledge/default/fees.yaml:7: answer is empty" in message


def test_a_duplicate_id_names_both_places(tmp_path: Path) -> None:
    again = SURVEY.replace("site-survey", "fees")
    write(
        tmp_path, {"default/province.yaml": DEFAULT_PROVINCE, "default/a.yaml": FEES, "default/b.yaml": again}
    )
    assert "knowledge/default/b.yaml:2: duplicate id 'fees': also at knowledge/default/a.yaml:2" in errors_of(
        tmp_path
    )


def test_a_paraphrase_repeated_across_entries_names_both_places(tmp_path: Path) -> None:
    repeated = SURVEY.replace("[勘查要本人在场吗]", '["报装要交钱吗?"]')  # punctuation does not make it new
    write(
        tmp_path,
        {"default/province.yaml": DEFAULT_PROVINCE, "default/a.yaml": FEES, "default/b.yaml": repeated},
    )
    assert (
        "knowledge/default/b.yaml:4: '报装要交钱吗?' repeats a question or paraphrase of entry 'fees' "
        "at knowledge/default/a.yaml:5"
    ) in errors_of(tmp_path)


def test_a_paraphrase_repeating_its_own_question_is_an_error(tmp_path: Path) -> None:
    repeated = FEES.replace("      - 办电收不收费\n", "      - 申请用电要收费吗\n")
    write(tmp_path, {"default/province.yaml": DEFAULT_PROVINCE, "default/a.yaml": repeated})
    assert (
        "knowledge/default/a.yaml:6: '申请用电要收费吗' repeats a question or paraphrase of its own entry"
        in (errors_of(tmp_path))
    )


def test_every_error_of_every_file_is_reported_together(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "default/province.yaml": DEFAULT_PROVINCE,
            "default/a.yaml": FEES.replace("id: fees", 'id: ""'),
            "default/b.yaml": "entries: [\n",
            "default/c.yaml": "questions: []\n",
        },
    )
    message = errors_of(tmp_path)
    assert message.startswith("3 configuration errors:")
    assert "knowledge/default/a.yaml:2: id is empty" in message
    assert "knowledge/default/b.yaml:2: invalid YAML" in message
    assert "knowledge/default/c.yaml:1: expected a map with the one key `entries`" in message


def test_check_config_validates_every_province_folder(tmp_path: Path) -> None:
    clash = (
        SURVEY.replace("site-survey", "local")
        .replace("现场勘查是什么", "本省问题")
        .replace("勘查要本人在场吗", "办电收不收费")
    )
    write(
        tmp_path,
        {
            "default/province.yaml": DEFAULT_PROVINCE,
            "default/fees.yaml": FEES,
            "henan/province.yaml": 'province: henan\nname: 河南\nhotline: "95598"\n',
            "henan/local.yaml": clash,
            "hubei/province.yaml": "province: hubei\nname: 湖北\n",
        },
    )
    message = "\n".join(
        str(error) for error in check_config(tmp_path) if (error.file or "").startswith("knowledge/")
    )
    assert len(message.splitlines()) == 2
    assert (
        "knowledge/henan/local.yaml:4: '办电收不收费' repeats a question or paraphrase of entry 'fees'"
        in message
    )
    assert "knowledge/hubei/province.yaml:1: missing hotline" in message


def test_check_config_accepts_a_valid_knowledge_folder(tmp_path: Path) -> None:
    write(tmp_path, {"default/province.yaml": DEFAULT_PROVINCE, "default/fees.yaml": FEES})
    assert [error for error in check_config(tmp_path) if (error.file or "").startswith("knowledge/")] == []


DECLINED = """\
declined:
  - topic: bills
    examples:
      - 这个月电费怎么这么高
      - 电费几号扣
  - topic: outages
    examples: [家里停电了]
"""


def test_declined_topics_are_loaded_with_their_file_and_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "default/province.yaml": DEFAULT_PROVINCE,
            "default/fees.yaml": FEES,
            "default/declined.yaml": DECLINED,
        },
    )
    base = load_knowledge(tmp_path)
    assert [entry.id for entry in base.entries] == ["fees"]
    assert [(topic.topic, topic.examples) for topic in base.declined] == [
        ("bills", ("这个月电费怎么这么高", "电费几号扣")),
        ("outages", ("家里停电了",)),
    ]
    assert (base.declined[1].file, base.declined[1].line) == ("knowledge/default/declined.yaml", 6)


def test_a_base_without_declined_topics_declines_nothing(tmp_path: Path) -> None:
    write(tmp_path, {"default/province.yaml": DEFAULT_PROVINCE, "default/fees.yaml": FEES})
    assert load_knowledge(tmp_path).declined == ()


def test_a_province_replaces_declined_topics_by_topic(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "default/province.yaml": DEFAULT_PROVINCE,
            "default/declined.yaml": DECLINED,
            "henan/province.yaml": 'province: henan\nname: 河南\nhotline: "95598"\n',
            "henan/declined.yaml": "declined:\n  - topic: outages\n    examples: [村里停电了]\n",
        },
    )
    declined = {topic.topic: topic.examples for topic in load_knowledge(tmp_path, "henan").declined}
    assert declined == {"bills": ("这个月电费怎么这么高", "电费几号扣"), "outages": ("村里停电了",)}


def test_broken_declined_topics_are_reported_at_their_lines(tmp_path: Path) -> None:
    broken = """\
declined:
  - topic: bills
    examples: []
  - topic: ""
    examples: [家里停电了]
  - examples: [电表坏了]
    why: meter
  - topic: bills
    examples: [电费几号扣]
"""
    write(tmp_path, {"default/province.yaml": DEFAULT_PROVINCE, "default/declined.yaml": broken})
    message = errors_of(tmp_path)
    assert message.startswith("4 configuration errors:")
    assert "knowledge/default/declined.yaml:3: examples is empty" in message
    assert "knowledge/default/declined.yaml:4: topic is empty" in message
    assert "knowledge/default/declined.yaml:6: declined topic is missing topic" in message
    assert "knowledge/default/declined.yaml:7: unknown key 'why' (keys: topic, examples)" in message


def test_a_duplicate_topic_names_both_places(tmp_path: Path) -> None:
    twice = DECLINED + "  - topic: bills\n    examples: [电费单看不懂]\n"
    write(tmp_path, {"default/province.yaml": DEFAULT_PROVINCE, "default/declined.yaml": twice})
    assert (
        "knowledge/default/declined.yaml:8: duplicate topic 'bills': "
        "also at knowledge/default/declined.yaml:2" in errors_of(tmp_path)
    )


def test_a_declined_example_repeating_a_paraphrase_names_both_places(tmp_path: Path) -> None:
    clash = DECLINED.replace("[家里停电了]", "[办电收不收费]")
    write(
        tmp_path,
        {
            "default/province.yaml": DEFAULT_PROVINCE,
            "default/fees.yaml": FEES,
            "default/declined.yaml": clash,
        },
    )
    assert (
        "knowledge/default/declined.yaml:7: '办电收不收费' repeats a question or paraphrase of entry 'fees' "
        "at knowledge/default/fees.yaml:6"
    ) in errors_of(tmp_path)


def test_a_declined_file_of_another_shape_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"default/province.yaml": DEFAULT_PROVINCE, "default/declined.yaml": "entries: []\n"})
    assert "knowledge/default/declined.yaml:1: expected a map with the one key `declined`" in errors_of(
        tmp_path
    )
