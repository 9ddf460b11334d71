"""Refusals in Chinese for the console: one translator for every form and every error page.

The API answers in English with stable codes (app.main); the console shows the same refusal in Chinese: the field's
label (app.labels.FIELDS) and the reason. A Pydantic error is translated by its type and context (`ge`, `max_length`
…); a domain error by its own Chinese (`zh`, when the raiser gave one), else by the first pattern below that matches
its English message, else by its status. Nothing English reaches a duty officer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from app import labels
from app.errors import DomainError

Reason = str | Callable[[re.Match[str]], str]


def _status(match: re.Match[str]) -> str:
    return f"事件当前为“{labels.label('statuses', match['status'])}”，不能进行此操作"


def _line(match: re.Match[str]) -> str:
    return f"第{match['line']}行：{translate(match['rest'])}"


# The service's own messages (domain errors and validators), English → Chinese; the first match wins. Reasons for
# a field are predicates ("不能晚于…"), shown after the field's label; the others are sentences.
REASONS: list[tuple[str, Reason]] = [
    (r"^line (?P<line>\d+): (?P<rest>.+)$", _line),
    # incidents
    (r"is more than 10 minutes in the future", "不能晚于当前时间10分钟以上"),
    (r"must be a 6 to 12 digit division code", "应为6至12位数字的区划代码"),
    (r"give the street/township or district where it happened", "应为事发的街道/乡镇或区，不能是市"),
    (r"is at another unit; a repeat cannot move it", "不能改为另一个单位"),
    (r"only a duty officer or a leader acknowledges", "只有值班员或带班领导可以签收"),
    (r"is not on a tier that must acknowledge", "您所在的层级无需签收此事件"),
    (r"is not on this incident's chain", "您不在此事件的上报层级中"),
    (r"there is no tier above the city", "市级之上没有更高层级，无法再上报"),
    (r"file the final report \(终报\) before closing", "请先提交终报，再关闭事件"),
    (r"the final report \(终报\) is filed; no more reports", "终报已提交，不能再提交报告"),
    (r"the first report \(首报\) is already filed", "首报已提交，请提交续报"),
    (r"only the reporting agency may file reports", "只有报告此事件的对接单位可以提交报告"),
    (r"only the reporting agency may do this", "只有报告此事件的对接单位可以操作"),
    (r"only a leader or an admin gives an instruction", "只有带班领导或管理员可以作出批示"),
    (r"incident \S+ is already closed|incident \S+ is closed", "事件已关闭"),
    (r"incident \S+ is (already )?(?P<status>reported|acknowledged|responding|resolved|closed)$", _status),
    (r"could not allocate an incident code", "暂时无法分配事件编号，请重试"),
    (r"not an incident id", "不是有效的事件编号"),
    (r"^no incident with id", "事件不存在，或不在您的管辖范围内"),
    # scope and authority
    (r"outside (the|your) scope", "超出您的管辖范围"),
    (r"lacks the permission", "您的角色没有此项操作的权限"),
    (r"only city-level principals may", "只有市级人员可以进行此操作"),
    (r"may not grant the role", "您不能授予该角色"),
    (r"you may not change your own roles", "不能修改自己的角色或停用自己"),
    (r"this principal has no unit of its own", "请填写单位"),
    # shifts and rosters
    (r"already checked in for this shift", "本班次已签到"),
    (r"only a signed-in duty officer or leader can do this", "只有已登录的值班员或带班领导可以操作"),
    (r"only a person on duty can do this", "只有当前值班人员可以操作"),
    (r"a handover is written by the person whose shift is ending", "交接班记录由即将下班的值班人员填写"),
    (r"you cannot hand over to yourself", "不能交接给自己"),
    (r"no active person", "不是在职人员"),
    (r"ends_at must be after starts_at", "结束时间须晚于开始时间"),
    (r"at most 31 days", "最长31天，请分段填写"),
    (r"a swap needs two different people", "换班须是两个不同的人"),
    (r"the two intervals overlap", "两个时段重叠"),
    (r"already covers part of this time", "该时段已有排班"),
    (r"use an override to replace someone", "请用替班替换人员，或重新导入排班表"),
    (r"a person id is from 1 to", "不是有效的人员编号"),
    (r"^no person '?(?P<ref>[^']*)'?$", lambda m: f"不存在：{m['ref']}"),
    (r"^(?P<name>.+) \(id \d+\) is deactivated", lambda m: f"{m['name']}已停用"),
    (
        r"^(?P<name>.+) belongs to (?P<home>\d+ \S+), outside",
        lambda m: f"{m['name']}属于{m['home']}，不在该单位及其下级",
    ),
    (r"a username or phone is required", "必填（用户名或手机号）"),
    (r"give either date or start and end", "日期与开始、结束时间只能填一种"),
    (r"required when there is no date", "未填日期时必填"),
    (r"is not an ISO 8601 time", "时间格式有误（例如 2026-05-01T08:30:00+08:00）"),
    (r"is not a month \(YYYY-MM\)", "格式应为 年-月"),
    (r"is not a date|YYYY-MM-DD", "日期格式应为 年-月-日"),
    (r"must be after start$", "须晚于开始时间"),
    (r"is not one of", "不是有效的选项"),
    (r"a username or phone has at most", "用户名或手机号最多64个字符"),
    (r"overlaps line (?P<other>\d+) for the same unit and role", "与同一单位同一岗位的另一行时段重叠"),
    (r"empty file; the first line must name the columns", "文件为空，第一行须为列名"),
    (r"use YYYY-MM", "格式应为 年-月"),
    (r"the window may be at most 92 days", "时间范围最长92天"),
    # notices and roll-calls
    (r"give a scope, tiers or units", "请选择范围、层级或接收单位"),
    (r"names no unit below the issuer", "接收单位须是下发单位的下级"),
    (r"matches: the scope is empty", "范围内没有符合条件的下级单位"),
    (r"every unit in scope already has this notice", "范围内各单位均已收到此通知"),
    (r"only a person on duty at the receiving unit signs", "只有接收单位的当前值班人员可以签收"),
    (r"was not sent to", "此通知未下发至本单位"),
    (r"only the person on duty at a post answers", "只有该岗位的当前值班人员可以应答查岗"),
    (r"must be HH:MM-HH:MM", "格式应为 时:分-时:分，例如 22:00-06:00"),
    (r"start and end must differ", "开始与结束时间不能相同"),
    (r"must be after from", "须晚于开始时间"),
    (r"must be in the future", "须晚于当前时间"),
    # people
    (r"already the mobile number of|belongs to an active person already", "已是另一位在职人员的手机号码"),
    (r"the username .* is taken", "用户名已被占用"),
    (r"a role is listed twice", "岗位重复"),
    (r"2 to 64 characters: letters, digits", "应为2至64个字母、数字或 _ . @ -"),
    # hazards
    (r"is before found_at", "整改期限不能早于发现时间"),
    (r"unknown category", "不是已知的类别"),
    (r"is in the future", "不能晚于当前时间"),
    (r"needs its basis", "重大隐患须填写判定依据"),
    (r"not the city", "隐患须属于街道/乡镇或区，不能是市"),
    (r"unknown unit", "不是已知的单位代码"),
    (r"not a JPEG or PNG|could not be decoded", "不是 JPEG 或 PNG 图片"),
    (r"damaged or incomplete", "图片已损坏或不完整"),
    (r"5 MB", "照片不能超过 5 MB"),
    (r"more than a photo needs", "图片像素过大"),
    (r"the file is empty|empty file", "文件为空"),
    (r"must be UTF-8", "CSV 文件须为 UTF-8 编码（或改用 XLSX）"),
    (r"not a readable XLSX", "无法读取的 XLSX 文件"),
    (r"holds a formula", "单元格含公式，请填写数值或文字"),
    (r"no rows to import", "文件中没有数据行"),
    (r"has already passed", "日期已过"),
    (r"must be after the current deadline", "须晚于当前整改期限"),
    (r"say what is still wrong", "验收未通过时须说明原因"),
    (r"must be before or after", "请选择整改前或整改后"),
    (r"a file is required", "请选择文件"),
    (r"no hazard .* in your scope", "编号不存在或不在您的管辖范围内（新增隐患请留空编号）"),
    (r"phone|mobile", "不是有效的手机号码"),
]
_COMPILED = [(re.compile(p), r) for p, r in REASONS]

# When nothing more precise is known: by the refusal's HTTP status.
BY_STATUS = {
    400: "请求有误",
    401: "请先登录",
    403: "超出您的权限或管辖范围",
    404: "未找到，或不在您的管辖范围内",
    409: "当前状态不允许此操作",
    413: "文件过大",
    422: "填写有误",
    429: "操作过于频繁，请稍后再试",
}


def translate(message: str) -> str | None:
    """The Chinese for one of the service's English messages, or None when it is not one we know."""
    text = message.removeprefix("Value error, ")
    if re.search(r"[\u4e00-\u9fff]", text) and not re.search(r"[a-z]{4,} [a-z]{3,}", text):
        return text  # already Chinese (a console-side message)
    for pattern, reason in _COMPILED:
        match = pattern.search(text)
        if match:
            return reason(match) if callable(reason) else reason
    return None


def pydantic_reason(err: ErrorDetails) -> str:
    kind = err.get("type", "")
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    if kind == "missing":
        return "必填"
    if kind == "string_too_short":
        return "不能为空" if ctx.get("min_length") in (None, 1) else f"至少{ctx['min_length']}个字"
    if kind == "string_too_long":
        return f"不能超过{ctx.get('max_length')}个字"
    if kind == "too_short":
        return f"至少选择{ctx.get('min_length')}项"
    if kind == "too_long":
        return f"最多{ctx.get('max_length')}项"
    if kind == "greater_than_equal":
        return "不能为负数" if ctx.get("ge") == 0 else f"不能小于{ctx.get('ge')}"
    if kind == "greater_than":
        return "须大于0" if ctx.get("gt") == 0 else f"须大于{ctx.get('gt')}"
    if kind == "less_than_equal":
        return f"不能大于{ctx.get('le'):,}" if isinstance(ctx.get("le"), int | float) else "数值过大"
    if kind == "less_than":
        return f"须小于{ctx.get('lt')}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "应为整数"
    if kind in ("float_parsing", "float_type", "decimal_parsing", "finite_number"):
        return "应为数字"
    if kind in ("bool_parsing", "bool_type"):
        return "应为是或否"
    if kind in ("enum", "literal_error"):
        return "请选择有效的选项"
    if kind in ("datetime_parsing", "datetime_from_date_parsing", "datetime_type", "timezone_aware"):
        return "时间格式有误"
    if kind in ("date_parsing", "date_from_datetime_parsing", "date_type"):
        return "日期格式应为 年-月-日"
    if kind in ("time_parsing", "time_type"):
        return "时间格式应为 时:分"
    if kind == "string_pattern_mismatch":
        return "格式不正确"
    if kind == "extra_forbidden":
        return "不是可填写的项"
    if kind in ("string_type", "list_type", "dict_type", "model_type", "model_attributes_type"):
        return "格式不正确"
    return translate(str(err.get("msg", ""))) or "填写有误"


def _with_label(field: str, reason: str) -> str:
    label = labels.field(field) if field != "form" else ""
    if not label or label == field or reason.startswith(label):
        return reason
    return f"{label}{reason}"


def field_errors(exc: DomainError | ValidationError) -> dict[str, str]:
    """Field (as the form names it: "casualties.deaths") → its label and reason in Chinese ("死亡人数不能为负数")."""
    fields: dict[str, str] = {}
    if isinstance(exc, ValidationError):
        for err in exc.errors():
            field = ".".join(str(p) for p in err.get("loc", ())) or "form"
            fields.setdefault(field, _with_label(field, pydantic_reason(err)))
        return fields
    for f in exc.fields:
        row = _ROW.match(f.field)
        text = _LINE.sub("", f.message) if row else f.message
        reason = f.zh or translate(text) or BY_STATUS.get(exc.status, "填写有误")
        if row:  # a row of an imported file: "第3行 人员：不存在：ghost"
            fields[f.field] = f"第{row['line']}行 {labels.field(row['column'])}：{reason}"
        else:
            fields.setdefault(f.field, _with_label(f.field, reason))
    return fields


_ROW = re.compile(r"^rows\[(?P<line>\d+)\]\.(?P<column>\w+)$")
_LINE = re.compile(r"^line \d+: ")


def message(exc: DomainError) -> str:
    """A domain refusal as a sentence in Chinese."""
    zh = getattr(exc, "zh", None)
    if isinstance(zh, str) and zh:
        return zh
    return translate(exc.message) or BY_STATUS.get(exc.status, "操作未能完成")


def refusal(exc: DomainError | ValidationError) -> tuple[str, dict[str, str]]:
    """A summary and field → message, for showing a refusal next to the form's fields."""
    fields = field_errors(exc)
    if isinstance(exc, DomainError) and not fields:
        return message(exc), {}
    if any(_ROW.match(f) for f in fields):
        return f"文件中有{len(fields)}处问题，整份文件未导入", fields
    listed = "；".join(fields.values())
    return f"请检查标红的字段：{listed}"[:600], fields


def status_of(exc: DomainError | ValidationError) -> int:
    return exc.status if isinstance(exc, DomainError) else 422


# --- error pages --------------------------------------------------------------------------------------------------

PAGE_TITLES = {
    400: "请求有误",
    403: "无权访问",
    404: "未找到",
    405: "不支持的操作",
    409: "无法完成操作",
    413: "文件过大",
    422: "地址有误",
    429: "操作过于频繁",
    500: "系统出错",
    503: "系统暂不可用",
}
PAGE_MESSAGES = {
    404: "您访问的页面不存在，或对象不在您的管辖范围内。",
    405: "此页面不支持这种操作。",
    422: "链接中的参数无效（如编号应为正整数）。请从页面上的链接进入。",
    500: "处理请求时出现意外错误，已记录。请稍后重试，或联系系统管理员。",
    503: "数据库暂时不可用，请稍后重试。",
}


def request_errors(errors: Sequence[Any]) -> str:
    """What a request the router refused says, in Chinese: a bad link (path or query) or a form field too long."""
    parts = []
    for err in errors[:3]:
        loc = [str(p) for p in err.get("loc", ())]
        where, field = (loc[0] if loc else ""), ".".join(loc[1:])
        if where in ("path", "query"):
            return PAGE_MESSAGES[422]
        parts.append(_with_label(field or "form", pydantic_reason(err)))
    return "；".join(parts) or PAGE_MESSAGES[422]


def page(status: int, exc: DomainError | None = None) -> tuple[str, str]:
    """The title and message of a console error page for a status (and the domain refusal behind it, if any)."""
    title = PAGE_TITLES.get(status, "请求未能完成")
    if exc is not None and exc.status != 404:
        return title, message(exc)
    return title, PAGE_MESSAGES.get(status) or BY_STATUS.get(status, "请求未能完成。")
