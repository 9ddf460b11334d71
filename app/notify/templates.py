"""Every message text the service sends, in one place: short Chinese templates with named parameters.

A message is a logical template plus parameters (mainland SMS providers want approved template ids and
parameters, not free text), rendered here into the body that is stored with the outbox row. The first page
aims at one 70-character UCS-2 segment: the title is shortened to fit, never the code or the reply hint.
"""

from __future__ import annotations

import string
from typing import Any

from app import labels
from app.errors import Invalid

SEGMENT = 70  # characters in one UCS-2 SMS segment


TEMPLATES: dict[str, str] = {
    "incident_page": "【{level}级{category}】{unit}:{title}。编号{code},回复1签收",
    "incident_info": "【{level}级{category}通报】{unit}:{title}。编号{code},无需签收",
    "incident_reminder": "【提醒】{unit}{level}级{category}({code})仍未签收,请回复1签收",
    "tier_unresponsive": (
        "【{level}级{category}】{lower_unit}{minutes}分钟未签收,请{unit}处置:{title}。编号{code},回复1签收"
    ),
    "report_overdue": "【迟报】{code} {unit}{report}已逾期({due}),请督促报送",
    "digest": (
        "【待签收汇总】今日短信已达上限,您有{count}起事件待签收:{codes}。此后需签收的通知改为电话,回复“1 编号”签收"
    ),
    "ack_confirmed": "已签收 {code}",
    "ack_help": "未能识别回复。回复1签收最近的通知,或回复“1 编号”签收指定事件",
    "ack_nothing_pending": "没有待签收的通知",
    "ack_unknown_code": "未找到待签收的事件{code}。回复1签收最近的通知",
    "ack_refused": "无法签收 {code}",
    "roster_gap": "【排班缺口】{unit}{role} {start}至{end}无人值守,请尽快安排",
    "missed_check_in": "【未签到】{unit}值班员{name}于{shift_start}接班后{minutes}分钟未签到",
    "heartbeat_missed": "【对接中断】{name}已{minutes}分钟无心跳,请检查",
    # A chase whose whole ladder (the post up to the city's leader) is vacant tells the admins (app.escalation.chase).
    "post_all_vacant": "【全线空岗】{unit}{role}及以上各级值守岗位均无人,转告管理员:{text}",
    "voice_page": "这里是应急值守平台。{unit}发生{level}级{category}事件:{title}。事件编号{code_spoken}。签收请按1。",
    "voice_ack_confirmed": "已签收,谢谢。",
    "voice_no_input": "未收到按键。请查看短信并回复1签收。再见。",
    "voice_help": "无效按键。签收请按1。",
    "voice_rollcall": "这里是应急值守平台。{caller}查岗点名，请{unit}{role}{name}确认在岗。确认请按1。",
    # Roll-call (查岗点名), PRODUCT.md §9: to the post, to the unit's leader when it missed or is vacant, and to
    # the calling unit's duty officer.
    "rollcall_page": "【查岗】{caller}点名:{unit}{role}{name},请于{minutes}分钟内回复 1 {code} 确认在岗",
    "rollcall_missed": "【查岗未应答】{caller}查岗({code}):{unit}{role}{name}{what},请核实",
    "rollcall_summary": "【查岗结果】{caller}查岗{code}:{posts}岗,应答{answered},未应答{missed},空岗{vacant}{detail}",
    "rollcall_answered": "已确认在岗 {code}",
    # Notices, warnings, instructions (通知/预警/指令) and their sign-off (签收), PRODUCT.md §9: to the receiving
    # unit's duty officer, its leader when unsigned, then the issuer's duty officer.
    "notice_page": "【{label}】{issuer}:{title}。请于{minutes}分钟内回复 1 {code} 签收",
    "notice_reminder": "【催签】{unit}未签收{issuer}{label}:{title}。请回复 1 {code} 签收",
    "notice_overdue": "【签收逾期】{count}个单位逾期未签收{label}:{title}({code}){units}",
    "notice_update": "【{label}更新】{issuer}:{title}。请于{minutes}分钟内回复 1 {code} 重新签收",
    "notice_cancel": "【{label}解除】{issuer}:{title}({code})已解除,无需回复",
    "notice_signed": "已签收 {code}",
    "notice_not_on_duty": "您已不在{unit}值班，无法签收 {code}",
    "hazard_reminder": "【隐患整改提醒】{unit}{venue}{level}隐患({code})整改期限{deadline},还有{days}天,请按期完成",
    "hazard_overdue": "【隐患逾期】{unit}{venue}{level}隐患({code})已过整改期限{deadline},请督促整改",
    "hazard_escalated": "【隐患逾期督办】{unit}{venue}{level}隐患({code})过期限{deadline}仍未整改,请{to_unit}督办",
    "ack_noted": "已收到 {code}",
}

# Parameters whose value may be shortened so the whole text fits one segment.
# (A roll-call summary's `detail` and an overdue notice's `units` are shortened by their writers, to two segments.)
_SHORTENABLE = {
    "incident_page": "title",
    "incident_info": "title",
    "tier_unresponsive": "title",
    "notice_page": "title",
    "notice_reminder": "title",
    "notice_update": "title",
    "notice_cancel": "title",
    "hazard_reminder": "venue",
    "hazard_overdue": "venue",
    "hazard_escalated": "venue",
}


def names(template: str) -> list[str]:
    """The parameters a template needs."""
    return [field for _, field, _, _ in string.Formatter().parse(TEMPLATES[template]) if field]


def _prepare(params: dict[str, Any]) -> dict[str, str]:
    values = {k: "" if v is None else str(v) for k, v in params.items()}
    if "category" in values:
        values["category"] = labels.label("categories", values["category"])
    if "role" in values:
        values["role"] = labels.label("duty_roles", values["role"])
    if "report" in values:
        values["report"] = labels.label("report_kinds", values["report"])
    if "code" in values and "code_spoken" not in values:
        # Letters one by one, so a text-to-speech voice does not read "F3K7" as a word.
        values["code_spoken"] = " ".join(values["code"])
    return values


def display_values(template: str, params: dict[str, Any]) -> dict[str, str]:
    """The parameters as the text shows them (category and role names in Chinese, the code spelled out), for
    providers that fill approved templates themselves (app.notify.message_templates)."""
    if template not in TEMPLATES:
        raise Invalid.field("template", f"unknown template {template!r}")
    return _prepare(params)


def render(template: str, params: dict[str, Any]) -> str:
    """The text of a template with its parameters; a missing parameter is an Invalid naming it."""
    if template not in TEMPLATES:
        raise Invalid.field("template", f"unknown template {template!r}")
    missing = [n for n in names(template) if n not in params and not (n == "code_spoken" and "code" in params)]
    if missing:
        raise Invalid.field("params", f"template {template!r} needs {', '.join(missing)}")
    values = _prepare(params)
    text = TEMPLATES[template].format_map(values)
    field = _SHORTENABLE.get(template)
    if field and len(text) > SEGMENT and values.get(field):
        room = len(values[field]) - (len(text) - SEGMENT) - 1
        if room >= 4:
            values[field] = values[field][:room] + "…"
            text = TEMPLATES[template].format_map(values)
    return text
