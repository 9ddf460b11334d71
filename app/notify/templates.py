"""Every message text the service sends, in one place: short Chinese templates with named parameters.

A message is a logical template plus parameters (mainland SMS providers want approved template ids and
parameters, not free text), rendered here into the body that is stored with the outbox row. Texts use full-width
punctuation (，：（）；). A level is always written with its Decree 493 name, "较大（III级）" (`grade`, derived from
`level`): a bare "III级医院" reads as 三级医院, a tertiary hospital. The first page of an incident carries the address
and the casualties and fits two concatenated UCS-2 segments (2 × 67 characters): the title and the address are
shortened to fit, never the code or the reply instruction; the other texts aim at one segment.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from app import labels
from app.errors import Invalid

SEGMENT = 70  # characters in one UCS-2 SMS segment
TWO_SEGMENTS = 2 * 67  # two UCS-2 segments sent concatenated (each loses 3 characters to the joining header)

LEVEL_NAMES = labels.SEVERITIES  # 特别重大 I, 重大 II, 较大 III, 一般 IV
_LEVEL_SPOKEN = {"I": "一级", "II": "二级", "III": "三级", "IV": "四级"}
_CASUALTY_NAMES = (("deaths", "死亡"), ("injuries", "重伤"), ("trapped", "被困"), ("missing", "失联"))

TEMPLATES: dict[str, str] = {
    "incident_page": (
        "【{grade}事件·{category}】{unit}：{title}。地址：{address}；伤亡：{casualties}。编号{code}，请于{window}内回复1签收"
    ),
    "incident_info": (
        "【{grade}事件通报·{category}】{unit}：{title}。地址：{address}；伤亡：{casualties}。编号{code}，无需签收"
    ),
    # To a tier that has not signed yet (签收): it names that tier (`tier_unit`), not just where it happened.
    "incident_reminder": (
        "【催签】{tier_unit}尚未签收{unit}{grade}事件·{category}（编号{code}），请于{window}内回复1签收"
    ),
    # To the tier above a tier that did not sign in time (`why`: how long it has waited, or a manual escalation).
    "tier_unresponsive": (
        "【{grade}事件·{category}】{lower_unit}{why}，请{tier_unit}签收处置：{unit}{title}。编号{code}，请于{window}内回复1签收"
    ),
    # A follow-up (续报) or a leader raised the level: every tier already involved is told the new one.
    "incident_regraded": (
        "【事件升级·{category}】{unit}事件（编号{code}）由{old_grade}升为{grade}：{title}。伤亡：{casualties}。"
        "请于{window}内回复1签收"
    ),
    "incident_regraded_info": (
        "【事件升级·{category}】{unit}事件（编号{code}）由{old_grade}升为{grade}：{title}。伤亡：{casualties}。无需回复"
    ),
    "report_overdue": "【迟报】{code} {unit}{report}已逾期（{due}），请督促报送",
    "digest": (
        "【待签收汇总】今日短信已达上限，您有{count}起事件待签收：{codes}。此后需签收的通知改为电话，回复“1 编号”签收"
    ),
    "ack_confirmed": "已签收 {code}",
    "ack_help": "未能识别回复。回复1签收最近的通知，或回复“1 编号”签收指定事件",
    "ack_nothing_pending": "没有待签收的通知",
    "ack_unknown_code": "未找到待签收的事件{code}。回复1签收最近的通知",
    "ack_refused": "无法签收 {code}",
    "roster_gap": "【排班缺口】{unit}{role} {start}至{end}无人值守，请尽快安排",
    "missed_check_in": "【未签到】{unit}值班员{name}于{shift_start}接班后{minutes}分钟未签到",
    "heartbeat_missed": "【对接中断】{name}已{minutes}分钟无心跳，请检查",
    # A chase whose whole ladder (the post up to the city's leader) is vacant tells the admins (app.escalation.chase).
    "post_all_vacant": "【全线空岗】{unit}{role}及以上各级值守岗位均无人，转告管理员：{text}",
    "voice_page": (
        "这里是应急值守平台。{unit}发生{grade_spoken}事件，类别{category}：{title}。事件编号{code_spoken}。签收请按1。"
    ),
    "voice_ack_confirmed": "已签收，谢谢。",
    "voice_no_input": "未收到按键。请查看短信并回复1签收。再见。",
    "voice_help": "无效按键。签收请按1。",
    "voice_rollcall": "这里是应急值守平台。{caller}查岗点名，请{unit}{role}{name}确认在岗。确认请按1。",
    # Roll-call (查岗点名), PRODUCT.md §9: to the post, to the unit's leader when it missed or is vacant, and to
    # the calling unit's duty officer.
    "rollcall_page": "【查岗】{caller}点名：{unit}{role}{name}，请于{minutes}分钟内回复 1 {code} 确认在岗",
    "rollcall_missed": "【查岗未应答】{caller}查岗（{code}）：{unit}{role}{name}{what}，请核实",
    "rollcall_summary": (
        "【查岗结果】{caller}查岗{code}：{posts}岗，应答{answered}，未应答{missed}，空岗{vacant}{detail}"
    ),
    "rollcall_answered": "已确认在岗 {code}",
    # Notices, warnings, instructions (通知/预警/指令) and their sign-off (签收), PRODUCT.md §9: to the receiving
    # unit's duty officer, its leader when unsigned, then the issuer's duty officer.
    "notice_page": "【{label}】{issuer}：{title}。请于{minutes}分钟内回复 1 {code} 签收",
    "notice_reminder": "【催签】{unit}未签收{issuer}{label}：{title}。请回复 1 {code} 签收",
    "notice_overdue": "【签收逾期】{count}个单位逾期未签收{label}：{title}（{code}）{units}",
    "notice_update": "【{label}更新】{issuer}：{title}。请于{minutes}分钟内回复 1 {code} 重新签收",
    "notice_cancel": "【{label}解除】{issuer}：{title}（{code}）已解除，无需回复",
    "notice_signed": "已签收 {code}",
    "notice_not_on_duty": "您已不在{unit}值班，无法签收 {code}",
    "hazard_reminder": "【隐患整改提醒】{unit}{venue}{level}隐患（{code}）整改期限{deadline}，还有{days}天，请按期完成",
    "hazard_overdue": "【隐患逾期】{unit}{venue}{level}隐患（{code}）已过整改期限{deadline}，请督促整改",
    "hazard_escalated": "【隐患逾期督办】{unit}{venue}{level}隐患（{code}）过期限{deadline}仍未整改，请{to_unit}督办",
    "ack_noted": "已收到 {code}",
}

# Parameters whose value may be shortened so the whole text fits, the first listed shortened first, and how long
# the text may be. (A roll-call summary's `detail` and an overdue notice's `units` are shortened by their writers.)
# Each step: (parameter, the fewest characters it keeps before "…").
_FIRST_PAGE = ((("address", 16), ("title", 12), ("address", 4), ("title", 4)), TWO_SEGMENTS)
_SHORTENABLE: dict[str, tuple[tuple[tuple[str, int], ...], int]] = {
    "incident_page": _FIRST_PAGE,
    "incident_info": _FIRST_PAGE,
    "tier_unresponsive": ((("title", 4),), TWO_SEGMENTS),
    "incident_regraded": ((("title", 4),), TWO_SEGMENTS),
    "incident_regraded_info": ((("title", 4),), TWO_SEGMENTS),
    "notice_page": ((("title", 4),), SEGMENT),
    "notice_reminder": ((("title", 4),), SEGMENT),
    "notice_update": ((("title", 4),), SEGMENT),
    "notice_cancel": ((("title", 4),), SEGMENT),
    "hazard_reminder": ((("venue", 4),), SEGMENT),
    "hazard_overdue": ((("venue", 4),), SEGMENT),
    "hazard_escalated": ((("venue", 4),), SEGMENT),
}

# Values the texts show that are derived from a parameter (placeholder: the parameter it comes from). A caller
# passes the parameter; `address` and `casualties` may be left out (shown as 未报, not reported).
DERIVED = {
    "grade": "level",
    "grade_spoken": "level",
    "old_grade": "old_level",
    "code_spoken": "code",
    "window": "window_seconds",
}
OPTIONAL = frozenset({"address", "casualties"})
NOT_REPORTED = "未报"


def grade(level: str) -> str:
    """A level as the texts write it: "较大（III级）" (a bare "III级" next to 医院 reads as a tertiary hospital)."""
    return labels.level(level)


def duration(seconds: float) -> str:
    """A window or a wait in Chinese: 90 → "1分30秒", 300 → "5分钟", 3600 → "1小时", 5400 → "1小时30分钟"."""
    total = max(1, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}小时" + (f"{minutes}分钟" if minutes else "")
    if minutes:
        return f"{minutes}分{secs}秒" if secs else f"{minutes}分钟"
    return f"{secs}秒"


def casualty_text(figures: Mapping[str, Any] | None) -> str:
    """Casualties as a page shows them: the non-zero counts ("死亡3人、重伤2人"), 无 when all are zero."""
    if not figures:
        return NOT_REPORTED
    parts = [f"{label}{int(figures.get(key) or 0)}人" for key, label in _CASUALTY_NAMES if figures.get(key)]
    return "、".join(parts) or "无"


def names(template: str) -> list[str]:
    """The parameters a template needs (a derived value's source parameter in its place)."""
    fields = [field for _, field, _, _ in string.Formatter().parse(TEMPLATES[template]) if field]
    return list(dict.fromkeys(DERIVED.get(f, f) for f in fields))


def _prepare(params: Mapping[str, Any]) -> dict[str, str]:
    casualties = params.get("casualties")
    values = {k: "" if v is None else str(v) for k, v in params.items() if k != "casualties"}
    values["casualties"] = casualties if isinstance(casualties, str) else casualty_text(casualties)
    if not values.get("address"):
        values["address"] = NOT_REPORTED
    if "category" in values:
        values["category"] = labels.label("categories", values["category"])
    if "role" in values:
        values["role"] = labels.label("duty_roles", values["role"])
    if "report" in values:
        values["report"] = labels.label("report_kinds", values["report"])
    if "level" in values:
        values.setdefault("grade", grade(values["level"]))
        spoken = _LEVEL_SPOKEN.get(values["level"])
        values.setdefault("grade_spoken", f"{LEVEL_NAMES[values['level']]}（{spoken}）" if spoken else values["level"])
    if "old_level" in values:
        values.setdefault("old_grade", grade(values["old_level"]))
    if values.get("window_seconds"):
        values.setdefault("window", duration(float(values["window_seconds"])))
    if "code" in values and "code_spoken" not in values:
        # Letters one by one, so a text-to-speech voice does not read "F3K7" as a word.
        values["code_spoken"] = " ".join(values["code"])
    return values


def display_values(template: str, params: Mapping[str, Any]) -> dict[str, str]:
    """The parameters as the text shows them (category and role names in Chinese, the level named, the code
    spelled out), for providers that fill approved templates themselves (app.notify.message_templates)."""
    if template not in TEMPLATES:
        raise Invalid.field("template", f"unknown template {template!r}")
    return _prepare(params)


def render(template: str, params: Mapping[str, Any]) -> str:
    """The text of a template with its parameters; a missing parameter is an Invalid naming it."""
    if template not in TEMPLATES:
        raise Invalid.field("template", f"unknown template {template!r}")
    missing = [n for n in names(template) if n not in params and n not in OPTIONAL]
    if missing:
        raise Invalid.field("params", f"template {template!r} needs {', '.join(missing)}")
    values = _prepare(params)
    text = TEMPLATES[template].format_map(values)
    fields, limit = _SHORTENABLE.get(template, ((), SEGMENT))
    for field, fewest in fields:
        over = len(text) - limit
        value = values.get(field, "").removesuffix("…")
        if over <= 0:
            break
        if len(value) <= fewest:
            continue
        values[field] = value[: max(fewest, len(value) - over - 1)] + "…"
        text = TEMPLATES[template].format_map(values)
    return text
