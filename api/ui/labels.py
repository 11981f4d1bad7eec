"""Chinese names of the codes the dashboard shows; stage names come from workflow/stages.yaml instead.

Each table is keyed by the canonical code the API serves, so a page and a JSON answer name the same thing.
A code missing from a table is shown as it is: a new code never hides a value.
"""

from __future__ import annotations

from collections.abc import Mapping

CUSTOMER_CLASSES: Mapping[str, str] = {
    "lv_residential": "低压居民",
    "lv_non_residential": "低压非居民",
    "hv_single_source": "高压单电源",
    "hv_dual_source": "高压双电源",
}

CASE_STATUSES: Mapping[str, str] = {"open": "办理中", "closed": "已归档"}

OUTCOMES: Mapping[str, str] = {"energised": "已送电", "withdrawn": "撤销", "cancelled": "终止"}

END_TO_END: Mapping[str, str] = {
    "on_track": "正常",
    "at_risk": "临期预警",
    "overdue": "超期",
    "paused": "客户工程中(暂停计时)",
    "met": "按期送电",
    "missed": "超期送电",
    "withdrawn": "撤销",
    "cancelled": "终止",
}

TIMELINE_KINDS: Mapping[str, str] = {
    "opened": "受理",
    "first_seen": "首次接入",
    "forward": "流转",
    "rework": "返工",
    "anomaly": "异常流转",
    "closed": "关闭",
    "flow_changed": "流程变更",
    "assigned": "派工",
    "at_risk": "临期预警",
    "overdue": "超期告警",
}

REWORK_CAUSES: Mapping[str, str] = {
    "information_error": "信息错误",
    "documents_missing": "资料不全",
    "design_change": "设计变更",
    "grid_constraint": "电网受限",
    "unspecified": "未注明原因",
    "any": "全部原因",
}

VERDICTS: Mapping[str, str] = {
    "feasible": "可行",
    "feasible_with_conditions": "有条件可行",
    "needs_reinforcement": "需电网改造",
    "not_feasible": "不可行",
    "insufficient_data": "数据不足",
    "no_capacity_check": "无需容量校核",
}

RULE_RESULTS: Mapping[str, str] = {
    # A rule result's name, which bandit takes for a password.
    "pass": "通过",  # nosec B105
    "fail": "不通过",
    "insufficient_data": "数据不足",
    "info": "信息",
    "existing_deficiency": "既有缺陷",
    "condition": "附条件",
}

BUSINESS_TYPES: Mapping[str, str] = {
    "new_connection": "新装",
    "capacity_increase": "增容",
    "capacity_reduction": "减容",
    "suspension": "暂停",
    "temporary_supply": "临时用电",
    "relocation": "迁址",
    "voltage_change": "改压",
    "meter_relocation": "移表",
    "name_change": "更名",
    "ownership_transfer": "过户",
    "tariff_change": "改类",
}

EVENT_TYPES: Mapping[str, str] = {
    "cn.yekuo.case.stage_changed.v1": "环节变更",
    "cn.yekuo.case.assigned.v1": "勘查派工",
    "cn.yekuo.case.at_risk.v1": "临期预警",
    "cn.yekuo.case.overdue.v1": "超期告警",
    "cn.yekuo.case.consistency_finding.v1": "一致性问题",
    "cn.yekuo.case.consistency_cleared.v1": "一致性问题已消除",
}

PARKED_KINDS: Mapping[str, str] = {"dead": "死信", "invalid": "无效输入"}

PARKED_STATUSES: Mapping[str, str] = {"parked": "待处理", "replayed": "已重放", "discarded": "已丢弃"}

OPERATOR_ACTIONS: Mapping[str, str] = {"replay": "重放", "discard": "丢弃"}

CIRCUIT_STATES: Mapping[str, str] = {"closed": "闭合 (正常)", "open": "断开", "half_open": "半开 (试探)"}

EQUIPMENT_KINDS: Mapping[str, str] = {"substation": "变电站", "feeder": "10kV线路", "transformer": "配变"}

AVAILABILITY: Mapping[str, str] = {"known": "已算出", "unknown": "无法计算", "not_applicable": "不适用"}

PV_GRADES: Mapping[str, str] = {"green": "绿色", "yellow": "黄色", "red": "红色"}

RATIO_POSITIONS: Mapping[str, str] = {"below": "偏低", "within": "合理", "above": "偏高"}

TABLES: Mapping[str, Mapping[str, str]] = {
    "customer_class": CUSTOMER_CLASSES,
    "status": CASE_STATUSES,
    "outcome": OUTCOMES,
    "end_to_end": END_TO_END,
    "timeline_kind": TIMELINE_KINDS,
    "rework_cause": REWORK_CAUSES,
    "verdict": VERDICTS,
    "rule_result": RULE_RESULTS,
    "business_type": BUSINESS_TYPES,
    "event_type": EVENT_TYPES,
    "parked_kind": PARKED_KINDS,
    "parked_status": PARKED_STATUSES,
    "operator_action": OPERATOR_ACTIONS,
    "circuit_state": CIRCUIT_STATES,
    "equipment_kind": EQUIPMENT_KINDS,
    "availability": AVAILABILITY,
    "pv_grade": PV_GRADES,
    "ratio_position": RATIO_POSITIONS,
}


def label(table: str, code: object) -> str:
    """The Chinese name of a code in one of TABLES, or the code itself when it has none; '—' for None."""
    if code is None:
        return "—"
    return TABLES[table].get(str(code), str(code))
