"""CAP 1.2 in: an OASIS Common Alerting Protocol alert from the early-warning system becomes a warning notice.

Parsing is defensive first (defusedxml: no DTD, no entities, no external references; a size cap), then the alert is
validated against the OASIS CAP 1.2 schema shipped in the package (xmlschema), then read as China's profile
(GB/T 35965.1) uses it: areas by GB/T 2260 geocode, severity as the warning colour.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from xml.etree.ElementTree import Element, ParseError

import xmlschema
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from app.errors import DomainError, FieldError, Invalid

NS = "urn:oasis:names:tc:emergency:cap:1.2"
MAX_BYTES = 256 * 1024  # a real alert is a few kilobytes
SEVERITY_COLOR = {"Extreme": "red", "Severe": "orange", "Moderate": "yellow", "Minor": "blue"}
# Sign-off window by colour (PRODUCT.md §9): red 15 min, orange 30, yellow 60, blue 120.
COLOR_WINDOW = {"red": 900, "orange": 1800, "yellow": 3600, "blue": 7200}
# How a geocode says it is a GB/T 2260 division code (the profile's name, and spellings seen in the field).
GEOCODE_NAMES = {"GB/T2260", "GBT2260", "GB2260", "ADCODE", "行政区划代码"}
_CODE = re.compile(r"^\d{6}$|^\d{9}$|^\d{12}$")


class HostileXml(DomainError):
    status = 400
    code = "hostile_xml"


class TooLarge(DomainError):
    status = 413
    code = "too_large"


@dataclass(frozen=True)
class Area:
    description: str
    codes: list[str]


@dataclass(frozen=True)
class Alert:
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    references: list[str]  # identifiers of the earlier alerts this one updates or cancels
    event: str = ""
    headline: str = ""
    description: str = ""
    instruction: str = ""
    severity: str = ""
    areas: list[Area] = field(default_factory=list)

    @property
    def color(self) -> str | None:
        return SEVERITY_COLOR.get(self.severity)

    @property
    def codes(self) -> list[str]:
        return list(dict.fromkeys(code for area in self.areas for code in area.codes))


@functools.cache
def schema() -> xmlschema.XMLSchema:
    path = resources.files("app.notices") / "data" / "CAP-v1.2.xsd"
    return xmlschema.XMLSchema(str(path))


def _local(tag: str | None) -> str:
    return (tag or "").rsplit("}", 1)[-1]


def _dotted(path: str | None) -> str:
    parts = [_local(p) for p in (path or "").strip("/").split("/") if p]
    return ".".join(p.split("[")[0] for p in parts) or "alert"


def _schema_error(root: Element) -> Invalid | None:
    error = next(iter(schema().iter_errors(root)), None)
    if error is None:
        return None
    where = _dotted(error.path)
    expected = getattr(error, "expected_tags", None) or []
    invalid = getattr(error, "invalid_tag", None)
    # A missing element shows as the next one being unexpected: name the one that was expected there.
    if expected:
        where = f"{where}.{_local(str(expected[0])).removeprefix('cap:')}"
    elif invalid is not None:
        where = f"{where}.{_local(str(invalid))}"
    reason = (error.reason or "does not follow the CAP 1.2 schema").strip()
    return Invalid(f"{where}: {reason}", fields=[FieldError(where, reason)])


def _text(parent: Element, name: str) -> str:
    child = parent.find(f"{{{NS}}}{name}")
    return (child.text or "").strip() if child is not None else ""


def _info(root: Element) -> Element | None:
    infos = root.findall(f"{{{NS}}}info")
    for info in infos:  # the Chinese block first, when there are several languages
        if _text(info, "language").lower().startswith("zh"):
            return info
    return infos[0] if infos else None


def division_code(value: str) -> str | None:
    """A GB/T 2260 code as units are keyed: 6 digits for a city or district, 9 for a street (a 12-digit code of
    the statistics register drops its trailing village digits)."""
    value = value.strip()
    if not _CODE.match(value):
        return None
    if len(value) == 12:
        value = value[:9]
    if len(value) == 9 and value.endswith("000"):
        value = value[:6]
    return value


def _areas(info: Element) -> list[Area]:
    areas: list[Area] = []
    for i, area in enumerate(info.findall(f"{{{NS}}}area")):
        codes: list[str] = []
        for geocode in area.findall(f"{{{NS}}}geocode"):
            name = re.sub(r"\s+", "", _text(geocode, "valueName")).upper()
            if name not in GEOCODE_NAMES:
                continue
            code = division_code(_text(geocode, "value"))
            if code is None:
                raise Invalid.field(
                    f"alert.info.area[{i}].geocode.value", f"{_text(geocode, 'value')!r} is not a GB/T 2260 code"
                )
            codes.append(code)
        if not codes:
            raise Invalid.field(f"alert.info.area[{i}].geocode", "needs a geocode with valueName GB/T 2260")
        areas.append(Area(description=_text(area, "areaDesc"), codes=codes))
    return areas


def parse(raw: bytes) -> Alert:
    """A checked alert, or: 413 too large, 400 hostile (DTD, entity, external reference), 422 invalid naming the
    element."""
    if len(raw) > MAX_BYTES:
        raise TooLarge(f"a CAP alert may be at most {MAX_BYTES} bytes")
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise HostileXml(
            f"refused: {type(exc).__name__} (DTDs, entities and external references are not accepted)",
            fields=[FieldError("alert", "DTDs, entities and external references are not accepted")],
        ) from exc
    except (ParseError, ValueError) as exc:
        raise Invalid.field("alert", f"not well-formed XML: {exc}") from exc
    if root.tag != f"{{{NS}}}alert":
        namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else "no namespace"
        raise Invalid.field("alert", f"the root must be <alert> in {NS}; got <{_local(root.tag)}> in {namespace}")
    problem = _schema_error(root)
    if problem is not None:
        raise problem
    status, msg_type = _text(root, "status"), _text(root, "msgType")
    if status not in ("Actual", "Exercise"):
        raise Invalid.field("alert.status", f"{status} is not acted on: only Actual and Exercise are")
    if msg_type not in ("Alert", "Update", "Cancel"):
        raise Invalid.field("alert.msgType", f"{msg_type} is not acted on: only Alert, Update and Cancel are")
    # references: "sender,identifier,sent" triples separated by whitespace.
    refs = [part.split(",")[1] for part in _text(root, "references").split() if part.count(",") >= 2]
    if msg_type != "Alert" and not refs:
        raise Invalid.field("alert.references", f"an {msg_type} must reference the alert it changes")
    sent = datetime.fromisoformat(_text(root, "sent"))
    info = _info(root)
    if info is None:
        if msg_type != "Cancel":
            raise Invalid.field("alert.info", f"an {msg_type} needs an info block")
        return Alert(_text(root, "identifier"), _text(root, "sender"), sent, status, msg_type, refs)
    severity = _text(info, "severity")
    if msg_type != "Cancel" and severity not in SEVERITY_COLOR:
        raise Invalid.field(
            "alert.info.severity", f"{severity} has no warning colour (Extreme, Severe, Moderate, Minor)"
        )
    areas = _areas(info)
    if msg_type != "Cancel" and not areas:
        raise Invalid.field("alert.info.area", "names no area")
    return Alert(
        identifier=_text(root, "identifier"),
        sender=_text(root, "sender"),
        sent=sent,
        status=status,
        msg_type=msg_type,
        references=refs,
        event=_text(info, "event"),
        headline=_text(info, "headline"),
        description=_text(info, "description"),
        instruction=_text(info, "instruction"),
        severity=severity,
        areas=areas,
    )
