"""One set of Chinese labels for what the console and the messages show: code → Chinese.

The domain keeps its English codes (enums, the API, the database); whatever a person reads in Chinese comes from
here, so a category, a role or a tier is named the same way on every page and in every SMS. Templates reach it
through the `label` filter and the `labels` global (app.web.pages); actors ("agency:119", "person:8:street.duty")
are named through `actors()` in one query per kind, whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from app.org.models import Agency, Person, Unit

if TYPE_CHECKING:
    from app.auth.principal import Principal

CATEGORIES: dict[str, str] = {
    "fire": "火灾",
    "gas": "燃气",
    "hazmat": "危化品",
    "construction": "建筑施工",
    "ebike": "电动自行车",
    "hospital": "医院",
    "elderly_care": "养老机构",
    "traffic": "交通",
    "flood": "洪涝",
    "geologic": "地质灾害",
    "public_health": "公共卫生",
    "public_security": "社会安全",
    "other": "其他",
}
# Hazard venue categories (场所类别), the defaults of the configurable list (app.hazards.categories).
VENUE_CATEGORIES: dict[str, str] = {
    "hospital": "医院",
    "elderly_care": "养老机构",
    "high_rise": "高层建筑",
    "underground": "地下空间",
    "construction_site": "建筑工地",
    "gas": "燃气",
    "ebike": "电动自行车",
    "crowded_venue": "人员密集场所",
    "factory": "工矿企业",
    "other": "其他",
}
# Duty roles (the two posts every unit keeps manned) and the people's roles of the org model.
DUTY_ROLES: dict[str, str] = {"duty_officer": "值班员", "leader": "带班领导"}
ROLES: dict[str, str] = {
    "admin": "管理员",
    "unit_admin": "单位管理员",
    **DUTY_ROLES,
    "viewer": "查看",
    "inspector": "排查员",
}
REPORT_KINDS: dict[str, str] = {"first": "首报", "follow_up": "续报", "final": "终报"}
TIERS: dict[str, str] = {"city": "市", "district": "区", "street": "街道/乡镇"}
# A tier as a level of supervision ("listed at the district level").
TIER_LEVELS: dict[str, str] = {"city": "市级", "district": "区级", "street": "街道级"}
SEVERITIES: dict[str, str] = {"I": "特别重大", "II": "重大", "III": "较大", "IV": "一般"}
SEVERITY_COLORS: dict[str, str] = {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色"}
INCIDENT_STATUSES: dict[str, str] = {
    "reported": "已接报",
    "acknowledged": "已签收",
    "responding": "处置中",
    "resolved": "已处置",
    "closed": "已结案",
}
# A tier of an incident (app.incidents.states.TierStatus) and the incident as a whole (OverallState).
TIER_STATES: dict[str, str] = {
    "paging": "待签收",
    "acknowledged": "已签收",
    "passed_over": "越级",
    "informed": "仅告知",
    "idle": "未涉及",
}
OVERALL_STATES: dict[str, str] = {
    "pending": "待签收",
    "partial": "部分签收",
    "acknowledged": "已签收",
    "resolved": "已处置",
    "closed": "已结案",
}
TIMELINE_KINDS: dict[str, str] = {
    "reported": "接报",
    "updated": "更新",
    "page": "通知",
    "page_held": "暂缓通知",
    "vacant": "空岗",
    "all_vacant": "全线空岗",
    "ack": "签收",
    "report": "报告",
    "late": "迟报",
    "regraded": "定级",
    "escalated": "升级",
    "escalation_stopped": "停止升级",
    "instruction": "领导批示",
    "failover": "改道发送",
    "delivery_failed": "送达失败",
    "fallback": "改为电话",
    "resolved": "处置完毕",
    "closed": "结案",
}
# The outbox row's status (app.notify.models.Status).
DELIVERY_STATUSES: dict[str, str] = {
    "queued": "排队中",
    "sending": "发送中",
    "sent": "已发送",
    "delivered": "已送达",
    "failed": "失败",
    "undelivered": "未送达",
}
# Every way a message goes out or an answer comes in (outbox channels, ack `via`, roll-call and receipt channels).
CHANNELS: dict[str, str] = {
    "sms": "短信",
    "voice": "电话",
    "webhook": "接口推送",
    "robot": "群机器人",
    "console": "控制台",
    "api": "接口",
    "feedback": "反馈",
}
PROVIDERS: dict[str, str] = {"aliyun": "阿里云", "tencent": "腾讯云", "twilio": "Twilio"}
ROBOT_KINDS: dict[str, str] = {"wecom": "企业微信", "dingtalk": "钉钉"}
NOTICE_KINDS: dict[str, str] = {"notice": "通知", "warning": "预警", "instruction": "指令"}
NOTICE_STATUSES: dict[str, str] = {"active": "有效", "cancelled": "已解除"}
RECEIPT_STATES: dict[str, str] = {"pending": "待签收", "signed": "已签收", "overdue": "逾期未签收"}
ROLLCALL_STATES: dict[str, str] = {"pending": "待应答", "answered": "已应答", "missed": "未应答", "vacant": "空岗"}
SCOPES: dict[str, str] = {"": "不按范围", "children": "直属下级", "subtree": "全部下级"}
HAZARD_LEVELS: dict[str, str] = {"general": "一般", "major": "重大"}
HAZARD_SOURCES: dict[str, str] = {
    "self_check": "单位自查",
    "inspection": "检查发现",
    "public_report": "群众举报",
    "hotline": "热线转办",
}
HAZARD_STATUSES: dict[str, str] = {"open": "待整改", "rectifying": "整改中", "submitted": "待验收", "closed": "已销号"}
HAZARD_ACTIONS: dict[str, str] = {
    "plan": "整改方案",
    "submit": "提交整改",
    "verify": "验收",
    "extension": "延期",
    "listing": "挂牌督办",
    "photo": "上传照片",
}
HAZARD_TIMELINE_KINDS: dict[str, str] = {
    "reported": "登记",
    "plan": "整改方案",
    "submitted": "提交整改",
    "verify_failed": "验收未通过",
    "closed": "销号",
    "extension": "延期",
    "listed": "挂牌督办",
    "photo": "照片",
    "reminder": "到期提醒",
    "overdue": "逾期",
    "escalated": "逾期上报",
    "vacant": "空岗",
    "exhausted": "催办到顶",
}
# Automatic actors by the part of the service that acted.
SYSTEM_ACTORS: dict[str, str] = {
    "system:escalation": "系统（自动升级）",
    "system:chase": "系统（催办）",
    "system:delivery": "系统（送达）",
    "system:notify": "系统（通知）",
    "system": "系统",
    "cli": "系统（命令行）",
    "demo": "系统（演示数据）",
}

# The field names of forms and request bodies, as a person reads them next to the field.
FIELDS: dict[str, str] = {
    # incidents
    "category": "事件类别",
    "title": "标题",
    "description": "情况描述",
    "unit_code": "所属单位",
    "address": "地址",
    "location": "位置",
    "lat": "纬度",
    "lon": "经度",
    "occurred_at": "发生时间",
    "severity": "事件等级",
    "casualties": "伤亡人数",
    "deaths": "死亡人数",
    "injuries": "重伤人数",
    "trapped": "被困人数",
    "missing": "失联人数",
    "economic_loss_cny": "直接经济损失",
    "figures": "伤亡与损失数字",
    "reported_severity": "报告等级",
    "sensitive": "敏感事件",
    "external_id": "对方编号",
    "kind": "类型",
    "text": "内容",
    "reason": "理由",
    # rosters and shifts
    "role": "岗位",
    "roles": "岗位",
    "person": "人员",
    "person_id": "人员",
    "incoming": "接班人",
    "notes": "交接说明",
    "open_items": "未结事项",
    "starts_at": "开始时间",
    "ends_at": "结束时间",
    "month": "月份",
    "file": "文件",
    "unit": "单位",
    # notices and roll-calls
    "body": "正文",
    "to": "接收范围",
    "scope": "范围",
    "tiers": "层级",
    "tier": "层级",
    "units": "接收单位",
    "minutes": "时限（分钟）",
    "sign_within_seconds": "签收时限",
    "answer_within_seconds": "应答时限",
    "feedback_due_at": "反馈截止时间",
    "incident_id": "关联事件",
    "note": "说明",
    # hazards
    "venue": "场所名称",
    "venue_category": "场所类别",
    "level": "隐患等级",
    "basis": "判定依据",
    "found_at": "发现时间",
    "source": "来源",
    "responsible_org": "责任单位",
    "responsible_person": "责任人",
    "responsible_phone": "责任人手机",
    "deadline": "整改期限",
    "measures": "整改措施",
    "phase": "照片类型",
    "funds_cny": "资金",
    "until": "延期至",
    "passed": "验收结论",
    "header": "表头",
    # people
    "name": "姓名",
    "phone": "手机号码",
    "username": "用户名",
    "password": "密码",
}

# The hazard forms name two fields their own way.
HAZARD_FIELDS: dict[str, str] = {**FIELDS, "person": "整改责任人", "tier": "督办层级"}

# The accountability page (问效问责): the periods it offers and the names of its query fields.
REPORT_PERIODS: dict[str, str] = {"month": "本月", "week": "本周", "custom": "自定义"}
REPORT_FIELDS: dict[str, str] = {"unit": "单位", "from": "起始日期", "to": "截止日期", "format": "格式"}

GROUPS: dict[str, Mapping[str, str]] = {
    "categories": CATEGORIES,
    "duty_roles": DUTY_ROLES,
    "roles": ROLES,
    "report_kinds": REPORT_KINDS,
    "tiers": TIERS,
    "tier_levels": TIER_LEVELS,
    "report_periods": REPORT_PERIODS,
    "severities": SEVERITIES,
    "colors": SEVERITY_COLORS,
    "statuses": INCIDENT_STATUSES,
    "tier_states": TIER_STATES,
    "overall_states": OVERALL_STATES,
    "timeline_kinds": TIMELINE_KINDS,
    "delivery_statuses": DELIVERY_STATUSES,
    "channels": CHANNELS,
    "providers": PROVIDERS,
    "robot_kinds": ROBOT_KINDS,
    "notice_kinds": NOTICE_KINDS,
    "notice_statuses": NOTICE_STATUSES,
    "receipt_states": RECEIPT_STATES,
    "rollcall_states": ROLLCALL_STATES,
    "scopes": SCOPES,
    "hazard_levels": HAZARD_LEVELS,
    "hazard_sources": HAZARD_SOURCES,
    "hazard_statuses": HAZARD_STATUSES,
    "hazard_actions": HAZARD_ACTIONS,
    "hazard_timeline_kinds": HAZARD_TIMELINE_KINDS,
    "venue_categories": VENUE_CATEGORIES,
    "fields": FIELDS,
}


def label(group: str, code: object) -> str:
    """The Chinese for a code of a group (`label("channels", "sms")` → 短信); an unknown code is shown as it is."""
    if code is None:
        return ""
    text = str(code)
    return GROUPS[group].get(text, text)


def level(severity: object) -> str:
    """A level said unambiguously, "较大（III级）": "III级医院" would read as a tertiary hospital (三级医院)."""
    code = str(severity)
    name = SEVERITIES.get(code)
    return f"{name}（{code}级）" if name else code


def field(name: str) -> str:
    """A field's label; a dotted path (casualties.deaths, to.units.0) is named by its last named part."""
    parts = [p for p in name.split(".") if p and not p.isdigit()]
    for part in reversed(parts):
        if part in FIELDS:
            return FIELDS[part]
    return name


# --- actors by name ---------------------------------------------------------------------------------------------


def _parse(actor: str) -> tuple[str, str]:
    kind, _, rest = actor.partition(":")
    if kind == "person":
        return "person", rest.partition(":")[0]
    if kind == "agency":
        return "agency", rest
    return "other", actor


def actors(session: Session, values: Iterable[str | None]) -> dict[str, str]:
    """Each actor string as a person reads it: "右安门街道 陈静", "119指挥中心", "系统（自动升级）".

    One query for the people (with their units) and one for the agencies, whatever the number of values.
    """
    wanted = {v for v in values if v}
    person_ids: set[int] = set()
    agency_codes: set[str] = set()
    for value in wanted:
        kind, ref = _parse(value)
        if kind == "person" and ref.isdigit():
            person_ids.add(int(ref))
        elif kind == "agency" and ref:
            agency_codes.add(ref)
    people = _loaded_people(session, person_ids)
    if missing := person_ids - people.keys():
        rows = session.exec(
            select(Person.id, Person.name, Unit.name)
            .join(Unit, col(Unit.id) == col(Person.unit_id))
            .where(col(Person.id).in_(missing))
        ).all()
        people |= {pid: f"{unit_name} {name}" for pid, name, unit_name in rows if pid is not None}
    agencies: dict[str, str] = {}
    if agency_codes:
        found = session.exec(select(Agency.code, Agency.name).where(col(Agency.code).in_(agency_codes))).all()
        agencies = dict(found)
    out: dict[str, str] = {}
    for value in wanted:
        kind, ref = _parse(value)
        if kind == "person":
            fallback = value.split(":", 2)[2] if value.count(":") >= 2 else "用户"
            out[value] = people.get(int(ref), fallback) if ref.isdigit() else fallback
        elif kind == "agency":
            out[value] = agencies.get(ref, f"对接单位 {ref}")
        else:
            out[value] = SYSTEM_ACTORS.get(value) or ("系统" if value.startswith("system") else value)
    return out


def _loaded_people(session: Session, ids: set[int]) -> dict[int, str]:
    """The people (with their units) this session already holds: naming them costs no query (an SMS answer has just
    read who answered)."""
    found: dict[int, str] = {}
    for pid in ids:
        person = session.identity_map.get(session.identity_key(Person, pid))
        unit = person and session.identity_map.get(session.identity_key(Unit, person.unit_id))
        if isinstance(person, Person) and isinstance(unit, Unit):
            found[pid] = f"{unit.name} {person.name}"
    return found


def named(session: Session, principal: Principal) -> str:
    """A principal by name: the name its sign-in already read (an agency's API key), else as `actor` finds it."""
    return principal.name or actor(session, principal.actor)


def actor(session: Session, value: str | None) -> str:
    """One actor string by name (see `actors`)."""
    if not value:
        return ""
    return actors(session, [value])[value]
