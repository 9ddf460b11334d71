"""Logical templates bound per provider: a validated, versioned document (`GET/PUT /api/v1/message-templates`).

Mainland providers send only templates their reviewers approved, with parameters: Alibaba Cloud names them
(`${code}`), Tencent Cloud numbers them (`{1}`). Every message we send is a logical template
(`app.notify.templates`) plus parameters; this document says, for each provider, which approved template
carries it and how our parameters map onto its variables. It is validated on write like the rules: every
logical template bound for every provider a route uses, each binding's text using exactly its variables,
variables short, no links and no phone numbers in the text. Values are cleaned at send time the same way
(`variable_values`), since a title typed by a reporter could hold either.

The demo ships `demo_document()`: a complete binding for the simulator, derived from our own texts, which are
also the texts to submit for approval when going live (docs/operations.md).
"""

from __future__ import annotations

import re
import string
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import JSON, Column
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field as SQLField
from sqlmodel import Session, SQLModel, col, select

from app import audit
from app.auth.principal import Principal, authorize_whole_tree
from app.clock import Clock
from app.db import UTCDateTime
from app.errors import Conflict, FieldError, Invalid
from app.notify import templates

SMS_PROVIDERS = ("aliyun", "tencent")
VOICE_PROVIDERS = ("aliyun_voice",)
PROVIDERS = SMS_PROVIDERS + VOICE_PROVIDERS

# Longest value a provider accepts in one variable (Alibaba: 35 characters; Tencent, for an enterprise
# account: 20 per variable in a notification template).
VARIABLE_LIMIT = {"aliyun": 35, "tencent": 20, "aliyun_voice": 35}
DEFAULT_VARIABLE_MAX = 20

# Templates read out on a call (voice providers bind these; SMS providers the rest).
VOICE_TEMPLATES = frozenset(name for name in templates.TEMPLATES if name.startswith("voice_"))

_LINK = re.compile(r"(?i)\b(?:https?://|www\.)\S+|\b[a-z0-9-]+\.(?:com|cn|net|org|gov|io)\b\S*")
# Seven digits or more in a row, a landline with its area code, a mobile written 3-4-4: a phone number. Dates
# ("2026-12-01", "12-01 08:00") are not.
_PHONE = re.compile(r"\+?\d{7,}|\b\d{3,4}-\d{7,8}\b|\b1\d{2}[\s-]\d{4}[\s-]\d{4}\b")
_ALIYUN_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TENCENT_VAR = re.compile(r"\{(\d+)\}")


def text_fields(template: str) -> list[str]:
    """The placeholders of a logical template's text, in order (parameters, and values derived from them)."""
    fields = [f for _, f, _, _ in string.Formatter().parse(templates.TEMPLATES[template]) if f]
    return list(dict.fromkeys(fields))


def logical_templates(provider: str) -> list[str]:
    """The logical templates a provider must bind: voice texts for a voice provider, the rest for SMS."""
    voice = provider in VOICE_PROVIDERS
    return sorted(name for name in templates.TEMPLATES if (name in VOICE_TEMPLATES) == voice)


class Binding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(min_length=1, max_length=40, description="the provider's approved template id/code")
    sign_name: str | None = Field(
        default=None, max_length=20, description="overrides the provider's sign name (签名) for this template"
    )
    params: list[str] = Field(
        description="our parameter names in the provider's order (Tencent {1},{2},…) or by name (Alibaba ${name})"
    )
    text: str = Field(min_length=1, max_length=500, description="the approved text, with the provider's placeholders")
    max_length: dict[str, int] = Field(
        default_factory=dict, description="longest value per parameter (default 20; at most the provider's limit)"
    )


class ProviderTemplates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sign_name: str | None = Field(default=None, max_length=20, description="the approved sign name (签名)")
    templates: dict[str, Binding]


class TemplatesDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, description="assigned by the server; ignored on PUT")
    created_at: datetime | None = Field(default=None, description="assigned by the server; ignored on PUT")
    created_by: str | None = Field(default=None, description="assigned by the server; ignored on PUT")
    providers: dict[Literal["aliyun", "tencent", "aliyun_voice"], ProviderTemplates]

    @model_validator(mode="after")
    def _bindings(self) -> TemplatesDocument:
        problems: list[str] = []
        for provider, book in self.providers.items():
            for name, binding in book.templates.items():
                problems += [f"providers.{provider}.templates.{name}: {p}" for p in _check(provider, name, binding)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def binding(self, provider: str, template: str) -> Binding | None:
        book = self.providers.get(provider)  # type: ignore[call-overload]
        return book.templates.get(template) if book is not None else None

    def sign_name(self, provider: str, template: str) -> str | None:
        book = self.providers.get(provider)  # type: ignore[call-overload]
        if book is None:
            return None
        binding = book.templates.get(template)
        sign: str | None = (binding.sign_name if binding is not None else None) or book.sign_name
        return sign


def _check(provider: str, name: str, binding: Binding) -> list[str]:
    problems: list[str] = []
    if name not in templates.TEMPLATES:
        return [f"unknown logical template {name!r}"]
    if name not in logical_templates(provider):
        kind = "voice" if provider in VOICE_PROVIDERS else "SMS"
        return [f"{name!r} is not sent by {kind}; {provider} cannot bind it"]
    known = set(templates.names(name)) | set(text_fields(name))
    unknown = [p for p in binding.params if p not in known]
    if unknown:
        problems.append(f"params {', '.join(unknown)} are not parameters of {name!r} ({', '.join(sorted(known))})")
    if len(set(binding.params)) != len(binding.params):
        problems.append("a parameter is listed twice")
    if provider == "tencent":
        numbers = sorted({int(n) for n in _TENCENT_VAR.findall(binding.text)})
        if numbers != list(range(1, len(binding.params) + 1)):
            problems.append(f"text must use {{1}}…{{{len(binding.params)}}}, one per parameter; it uses {numbers}")
    else:
        used = set(_ALIYUN_VAR.findall(binding.text))
        if used != set(binding.params):
            problems.append(f"text uses ${{…}} variables {sorted(used)}, params are {sorted(binding.params)}")
    plain = _ALIYUN_VAR.sub("", _TENCENT_VAR.sub("", binding.text))
    if _LINK.search(plain):
        problems.append("the text holds a link")
    if _PHONE.search(plain):
        problems.append("the text holds a phone number")
    limit = VARIABLE_LIMIT[provider]
    for param, longest in binding.max_length.items():
        if param not in binding.params:
            problems.append(f"max_length names {param!r}, which is not among params")
        elif not 1 <= longest <= limit:
            problems.append(f"max_length of {param!r} must be 1 to {limit} ({provider}'s limit)")
    return problems


def missing_bindings(document: TemplatesDocument, providers: Iterable[str]) -> list[str]:
    """`provider.template` for every logical template a routed provider has no binding for."""
    missing: list[str] = []
    for provider in providers:
        book = document.providers.get(provider)  # type: ignore[call-overload]
        bound = set(book.templates) if book is not None else set()
        missing += [f"{provider}.{name}" for name in logical_templates(provider) if name not in bound]
    return missing


def clean_value(value: str, longest: int) -> str:
    """A variable as providers accept it: no link, no phone number, at most `longest` characters."""
    text = _PHONE.sub("*", _LINK.sub("", value)).strip()
    text = re.sub(r"\s+", " ", text)
    if len(text) > longest:
        text = text[: max(1, longest - 1)] + "…"
    return text or "-"


def variable_values(binding: Binding, template: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(parameter, value) in the binding's order, each value shown as our texts show it and cleaned."""
    shown = templates.display_values(template, params)
    return [
        (name, clean_value(shown.get(name, ""), binding.max_length.get(name, DEFAULT_VARIABLE_MAX)))
        for name in binding.params
    ]


def render(binding: Binding, values: list[tuple[str, str]], provider: str) -> str:
    """The text the phone receives from the provider (what the simulator sends, and the provider does)."""
    if provider == "tencent":
        by_number = {str(i + 1): v for i, (_, v) in enumerate(values)}
        return _TENCENT_VAR.sub(lambda m: by_number.get(m.group(1), ""), binding.text)
    by_name = dict(values)
    return _ALIYUN_VAR.sub(lambda m: by_name.get(m.group(1), ""), binding.text)


def _placeholders(text: str, order: list[str], provider: str) -> str:
    # 【】 are reserved for the sign name the provider puts in front; reviewers reject them in a template.
    text = text.replace("【", "[").replace("】", "]")
    if provider == "tencent":
        numbers = {name: i + 1 for i, name in enumerate(order)}
        return re.sub(r"\{(\w+)\}", lambda m: "{" + str(numbers[m.group(1)]) + "}", text)
    return re.sub(r"\{(\w+)\}", lambda m: "${" + m.group(1) + "}", text)


def _demo_id(provider: str, name: str) -> str:
    digits = zlib.crc32(f"{provider}:{name}".encode()) % 900_000 + 100_000
    return {"aliyun": f"SMS_46{digits}", "tencent": f"19{digits}", "aliyun_voice": f"TTS_46{digits}"}[provider]


def demo_document() -> TemplatesDocument:
    """A complete document for the simulator: each logical template bound under a made-up approved id, with our
    own text in each provider's placeholder syntax (the texts to get approved when going live)."""
    providers: dict[str, Any] = {}
    for provider in PROVIDERS:
        bindings: dict[str, Binding] = {}
        for name in logical_templates(provider):
            order = text_fields(name)
            limit = min(VARIABLE_LIMIT[provider], 20)
            bindings[name] = Binding(
                template_id=_demo_id(provider, name),
                params=order,
                text=_placeholders(templates.TEMPLATES[name], order, provider),
                max_length=dict.fromkeys(order, limit),
            )
        providers[provider] = ProviderTemplates(sign_name="应急值守", templates=bindings)
    return TemplatesDocument.model_validate({"providers": providers})


class MessageTemplates(SQLModel, table=True):
    __tablename__ = "message_templates"

    version: int = SQLField(primary_key=True)
    document: dict[str, Any] = SQLField(sa_column=Column(JSON, nullable=False))
    created_at: datetime = SQLField(sa_type=UTCDateTime)
    created_by: str = SQLField(max_length=120)


_NEWEST = select(MessageTemplates).order_by(col(MessageTemplates.version).desc()).limit(1)


def _as_document(row: MessageTemplates) -> TemplatesDocument:
    doc = TemplatesDocument.model_validate(row.document)
    return doc.model_copy(update={"version": row.version, "created_at": row.created_at, "created_by": row.created_by})


def current(session: Session) -> TemplatesDocument:
    """The newest document (the demo one, as version 1, until anyone replaces it)."""
    row = session.exec(_NEWEST).first()
    if row is None:
        return demo_document().model_copy(update={"version": 1, "created_by": "default"})
    return _as_document(row)


def replace(
    session: Session, *, clock: Clock, actor: Principal, document: dict[str, Any], routed: Iterable[str]
) -> TemplatesDocument:
    """Validate and store a new version: every logical template bound for every provider in `routed`."""
    authorize_whole_tree(actor, "rules:write")
    try:
        parsed = TemplatesDocument.model_validate(document)
    except ValidationError as exc:
        fields = [
            FieldError(".".join(str(p) for p in e["loc"]) or "document", e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]
        raise Invalid(
            "the message templates are invalid: " + "; ".join(f"{f.field}: {f.message}" for f in fields[:5]),
            fields=fields,
        ) from exc
    missing = missing_bindings(parsed, routed)
    if missing:
        fields = [FieldError(f"providers.{m.replace('.', '.templates.', 1)}", "not bound") for m in missing]
        raise Invalid(
            f"every logical template must be bound for every routed provider; missing: {', '.join(missing[:8])}"
            + (f" and {len(missing) - 8} more" if len(missing) > 8 else ""),
            fields=fields,
        )
    before = current(session)
    version = (before.version or 1) + 1
    body = parsed.model_dump(mode="json", exclude={"version", "created_at", "created_by"})
    row = MessageTemplates(version=version, document=body, created_at=clock.now(), created_by=actor.actor)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise Conflict("the message templates were replaced concurrently; read them again and retry") from exc
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="message_templates.replace",
        object_type="message_templates",
        object_id=version,
        before={"version": before.version},
        after=body,
    )
    return _as_document(row)


class TemplateBook:
    """The document in force, for the sending threads: read from the database at most every `ttl` seconds
    (another replica's PUT reaches this one that fast), at once after a PUT in this process."""

    def __init__(self, load: Callable[[], TemplatesDocument], *, ttl: float = 30.0) -> None:
        self._load = load
        self._ttl = ttl
        self._lock = threading.Lock()
        self._doc: TemplatesDocument | None = None
        self._loaded_at = 0.0

    def document(self) -> TemplatesDocument:
        with self._lock:
            if self._doc is None or time.monotonic() - self._loaded_at > self._ttl:
                try:
                    self._doc = self._load()
                except Exception:
                    if self._doc is None:
                        raise
                    # The database is away: the last document read stays in force.
                self._loaded_at = time.monotonic()
            return self._doc

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = 0.0

    @classmethod
    def fixed(cls, document: TemplatesDocument) -> TemplateBook:
        return cls(lambda: document, ttl=float("inf"))


PROVIDER_HEADINGS = {
    "aliyun": "Alibaba Cloud SMS (`aliyun`)",
    "tencent": "Tencent Cloud SMS (`tencent`)",
    "aliyun_voice": "Alibaba Cloud voice (`aliyun_voice`, TTS templates)",
}


def approval_table(document: TemplatesDocument | None = None) -> str:
    """The texts to submit for approval, per provider, as a Markdown table (docs/operations.md)."""
    doc = document or demo_document()
    lines: list[str] = []
    for provider, book in doc.providers.items():
        lines += [
            f"#### {PROVIDER_HEADINGS.get(provider, provider)}",
            "",
            "| logical template | demo id | text to get approved | variables |",
            "|---|---|---|---|",
        ]
        for name, b in sorted(book.templates.items()):
            lines.append(f"| `{name}` | `{b.template_id}` | {b.text} | {', '.join(b.params) or '—'} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(approval_table())  # noqa: T201
