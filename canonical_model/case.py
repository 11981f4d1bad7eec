"""Case (业扩工单): an application's progress through its stages, with timeline, deadlines and alerts."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import AwareDatetime, Field

from canonical_model.application import BusinessType, CustomerClass, ImportanceGrade, ReworkCause
from canonical_model.common import CanonicalModel, SourceRef

STAGE_PATTERN = r"^[a-z][a-z0-9_]*$"


class CaseStatus(StrEnum):
    """Whether work on the case goes on (办理中) or it reached its terminal stage (已归档)."""

    OPEN = "open"
    CLOSED = "closed"


class CaseOutcome(StrEnum):
    """How a closed case ended: power delivered (送电), withdrawn by the customer (撤销) or cancelled by the
    utility (终止)."""

    ENERGISED = "energised"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"


class TimelineKind(StrEnum):
    """What a timeline entry records; closed: the case left its flow for a closing stage (withdrawal,
    cancellation)."""

    OPENED = "opened"
    FIRST_SEEN = "first_seen"
    FORWARD = "forward"
    REWORK = "rework"
    ANOMALY = "anomaly"
    CLOSED = "closed"
    FLOW_CHANGED = "flow_changed"
    ASSIGNED = "assigned"
    AT_RISK = "at_risk"
    OVERDUE = "overdue"


class AlertKind(StrEnum):
    """A deadline alert (时限预警 / 超期)."""

    AT_RISK = "at_risk"
    OVERDUE = "overdue"


class AlertScope(StrEnum):
    """What a deadline alert is about: one stage's limit, or the case's end-to-end commitment (全流程时限)."""

    STAGE = "stage"
    END_TO_END = "end_to_end"


class StageReport(CanonicalModel):
    """A stage change reported by a legacy system other than through the application record (环节变更)."""

    application_no: str = Field(min_length=1, description="application number (申请编号)")
    stage: str = Field(pattern=STAGE_PATTERN, description="stage id the case entered (流程环节)")
    at: AwareDatetime = Field(description="when the stage was entered (环节开始时间)")
    responsible: str | None = Field(default=None, description="responsible person or unit (责任人/责任单位)")
    note: str | None = Field(default=None, description="free text from the source (备注)")
    source_refs: tuple[SourceRef, ...] = Field(default=(), description="legacy records this came from")


class StageTransition(CanonicalModel):
    """One timeline entry of a case: a stage change or a hub action, with its source (流程轨迹)."""

    application_no: str = Field(min_length=1, description="application number (申请编号)")
    position: int = Field(ge=0, description="place in the case's timeline, from 0")
    at: AwareDatetime = Field(description="when it happened (发生时间)")
    kind: TimelineKind = Field(description="what the entry records")
    stage_from: str | None = Field(default=None, description="stage left, if any (原环节)")
    stage_to: str | None = Field(default=None, description="stage entered, or the stage the action is about")
    visit: str | None = Field(default=None, description="stage visit key, <stage>#<n> for the n-th visit")
    source_system: str = Field(min_length=1, description="marketing, pms, dispatch or hub (来源系统)")
    source_event_id: str = Field(min_length=1, description="id of the event it came from (来源事件)")
    responsible: str | None = Field(default=None, description="responsible person or unit (责任人/责任单位)")
    note: str | None = Field(default=None, description="explanation (备注)")
    cause: ReworkCause | None = Field(
        default=None, description="for a rework, the cause the source gave (退回原因); null when it gave none"
    )


class CaseAnomaly(CanonicalModel):
    """A transition a legacy system made that the stage model does not allow (流程异常)."""

    at: AwareDatetime = Field(description="when the source made the transition")
    source_system: str = Field(min_length=1, description="system that reported it")
    source_event_id: str = Field(min_length=1, description="event that carried it")
    stage_from: str | None = Field(default=None, description="stage the case was in")
    stage_to: str = Field(min_length=1, description="stage the source reported")
    reason: str = Field(min_length=1, description="which rule it breaks")


class WorkloadFigure(CanonicalModel):
    """One candidate's open survey tasks when an assignment was made."""

    staff_id: str = Field(min_length=1, description="staff id (工号)")
    open_tasks: int = Field(ge=0, description="open survey tasks at the time")
    capacity: int = Field(ge=1, description="most open survey tasks this person takes")


class SurveyAssignment(CanonicalModel):
    """A site-survey task given to a staff member, with why this person (勘查派工)."""

    application_no: str = Field(min_length=1, description="application number (申请编号)")
    visit: str = Field(min_length=1, description="stage visit the task belongs to")
    stage: str = Field(pattern=STAGE_PATTERN, description="stage in which the survey is done")
    staff_id: str = Field(min_length=1, description="assignee's staff id (工号)")
    staff_name: str = Field(min_length=1, description="assignee's name (勘查人员)")
    unit: str = Field(min_length=1, description="assignee's unit (所属单位)")
    assigned_at: AwareDatetime = Field(description="when the hub assigned it")
    region: str = Field(min_length=1, description="supply unit of the site, matched to the staff regions")
    business_type: BusinessType = Field(description="business type, matched to the staff skills")
    candidates: tuple[WorkloadFigure, ...] = Field(description="every eligible person and their workload")
    reason: str = Field(min_length=1, description="the rule that picked this person, with its numbers")


class CaseAlert(CanonicalModel):
    """A deadline alert, at risk (预警) or overdue (超期), for one stage visit or for the whole case.

    An end-to-end alert (scope end_to_end) is about the utility's commitment from acceptance to power: its
    stage is the stage the case is in, its visit 'end_to_end', entered_at the acceptance time and
    limit_days the commitment.
    """

    application_no: str = Field(min_length=1, description="application number (申请编号)")
    kind: AlertKind = Field(description="at_risk or overdue")
    scope: AlertScope = Field(
        default=AlertScope.STAGE, description="stage: the stage's limit; end_to_end: the case's commitment"
    )
    stage: str = Field(pattern=STAGE_PATTERN, description="stage whose limit is at risk or exceeded")
    visit: str = Field(min_length=1, description="stage visit key, or 'end_to_end'")
    customer_class: CustomerClass = Field(description="customer class (客户分类)")
    entered_at: AwareDatetime = Field(description="when the stage was entered (the application accepted)")
    limit_days: int = Field(ge=1, description="time limit of the stage or commitment, working days (时限)")
    deadline: date = Field(description="last working day of the limit, Asia/Shanghai (到期日)")
    deadline_provisional: bool = Field(
        description="the deadline counts days of a year whose adjusted workdays are not published yet"
    )
    working_days_left: int = Field(
        description="working days after today up to the deadline; negative past it"
    )
    responsible: str | None = Field(default=None, description="responsible unit (责任单位)")
    assignee: str | None = Field(default=None, description="assigned staff id, if any (责任人)")
    detected_at: AwareDatetime = Field(description="when the hub detected it")


class Case(CanonicalModel):
    """The hub's view of one application's progress (业扩工单)."""

    application_no: str = Field(min_length=1, description="application number (申请编号)")
    customer_no: str = Field(min_length=1, description="customer number (户号)")
    customer_class: CustomerClass = Field(description="customer class (客户分类)")
    business_type: BusinessType = Field(description="business type (业务类型)")
    importance_grade: ImportanceGrade = Field(description="important user grade (重要用户等级)")
    flow: str = Field(min_length=1, description="flow of workflow/stages.yaml the case follows (流程)")
    province: str | None = Field(default=None, description="province whose limits apply, if configured")
    status: CaseStatus = Field(description="open or closed")
    stage: str = Field(pattern=STAGE_PATTERN, description="current stage (当前环节)")
    stage_entered_at: AwareDatetime = Field(description="when the current stage was entered")
    stage_limit_days: int | None = Field(default=None, ge=1, description="limit of the current stage")
    deadline: date | None = Field(default=None, description="due date of the current stage (到期日)")
    deadline_provisional: bool = Field(default=False, description="deadline counts unpublished calendar days")
    opened_at: AwareDatetime = Field(description="when the application was accepted (受理时间)")
    closed_at: AwareDatetime | None = Field(
        default=None, description="when the case was closed: its terminal or a closing stage entered"
    )
    outcome: CaseOutcome | None = Field(default=None, description="how the case ended; null while open")
    responsible: str | None = Field(default=None, description="responsible supply unit (责任单位)")
    assignee: str | None = Field(default=None, description="staff id of the open survey task (勘查人员)")
    rework_count: int = Field(ge=0, description="returns to an earlier stage (返工次数)")
    anomalies: tuple[CaseAnomaly, ...] = Field(default=(), description="transitions the model does not allow")
    timeline: tuple[StageTransition, ...] = Field(default=(), description="stage changes and hub actions")
