"""Routes by number prefix and failover between providers, on providers that answer as told (the routing rules
alone; the SDK paths are in test_mainland.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError

from app.config import Settings
from app.notify.channels import ChannelMessage, ProviderResult
from app.notify.models import ErrorClass
from app.notify.providers.routing import RoutedChannel, parse_routes, providers_in


@dataclass
class Told:
    """A provider that answers what it is told, and says whether earlier sends went through."""

    name: str
    answers: list[ProviderResult]
    went: ProviderResult | None = None
    sent: list[int] = field(default_factory=list)
    asked: list[int] = field(default_factory=list)

    def send(self, message: ChannelMessage) -> ProviderResult:
        self.sent.append(message.id)
        return self.answers.pop(0) if self.answers else ProviderResult(ErrorClass.ok, provider_id=f"{self.name}-1")

    def went_through(self, message: ChannelMessage) -> ProviderResult | None:
        self.asked.append(message.id)
        return self.went


def _message(to: str = "+8613800000011", *, provider: str | None = None) -> ChannelMessage:
    return ChannelMessage(
        id=7, channel="sms", to=to, body="b", template="incident_page", params={}, attempts=1, provider=provider
    )


def _channel(*providers: Told, routes: str = "+86=aliyun,tencent;*=twilio") -> RoutedChannel:
    return RoutedChannel("sms", parse_routes(routes), {p.name: p for p in providers})


def test_routes_parse_longest_prefix_first_and_bad_ones_are_refused() -> None:
    routes = parse_routes("*=twilio; +86=aliyun,tencent ;+852=twilio")
    assert [r.prefix for r in routes] == ["+852", "+86", "*"]
    assert providers_in(routes) == ["twilio", "aliyun", "tencent"]
    for bad in ("+86", "86=aliyun", "+86=aliyun,aliyun", "+86=Aliyun", "+86=a;+86=b", ""):
        with pytest.raises(ValueError):  # noqa: PT011 (each message names the route)
            parse_routes(bad)
    with pytest.raises(ValidationError, match=r"DUTYLINE_SMS_ROUTES|sms_routes"):
        Settings(DUTYLINE_SMS_ROUTES="+86=")


def test_a_number_goes_to_its_route_and_rate_limits_fail_over_in_the_same_attempt() -> None:
    aliyun = Told("aliyun", [ProviderResult(ErrorClass.rate_limited, error="isv.BUSINESS_LIMIT_CONTROL")])
    tencent, twilio = Told("tencent", []), Told("twilio", [])
    channel = _channel(aliyun, tencent, twilio)
    result = channel.send(_message())
    assert result.ok and result.provider == "tencent" and result.provider_id == "tencent-1"
    assert [(f.provider, f.error_class) for f in result.failovers] == [("aliyun", ErrorClass.rate_limited)]
    assert channel.send(_message("+12025550123")).provider == "twilio"
    assert twilio.sent == [7] and aliyun.sent == [7] and tencent.sent == [7]


def test_an_invalid_recipient_goes_to_no_other_provider() -> None:
    aliyun = Told("aliyun", [ProviderResult(ErrorClass.recipient_invalid, error="isv.MOBILE_NUMBER_ILLEGAL")])
    tencent = Told("tencent", [])
    result = _channel(aliyun, tencent).send(_message())
    assert result.error_class == ErrorClass.recipient_invalid and result.provider == "aliyun"
    assert tencent.sent == [] and result.failovers == ()


def test_a_transient_error_fails_over_only_once_the_first_provider_says_it_did_not_go_out() -> None:
    timeout = ProviderResult(ErrorClass.transient, error="timeout", uncertain=True)
    # It went through after all: adopted, not sent again elsewhere.
    aliyun = Told("aliyun", [timeout], went=ProviderResult(ErrorClass.ok, extra={"adopted": True}))
    tencent = Told("tencent", [])
    result = _channel(aliyun, tencent).send(_message())
    assert result.ok and result.provider == "aliyun" and tencent.sent == [] and aliyun.asked == [7]
    # It did not: the next provider carries it.
    aliyun = Told("aliyun", [timeout], went=None)
    result = _channel(aliyun, tencent).send(_message())
    assert result.ok and result.provider == "tencent" and tencent.sent == [7]
    # It cannot say: the message stays with the first provider, flagged, and waits.
    cannot = ProviderResult(ErrorClass.transient, error="QuerySendDetails: down", uncertain=True)
    aliyun, tencent = Told("aliyun", [timeout], went=cannot), Told("tencent", [])
    result = _channel(aliyun, tencent).send(_message())
    assert result.error_class == ErrorClass.transient and result.uncertain and result.provider == "aliyun"
    assert tencent.sent == []
    # An error answer (nothing was made) after which the provider cannot say still fails over.
    down = ProviderResult(ErrorClass.transient, error="HTTP 503 ServiceUnavailable")
    aliyun, tencent = Told("aliyun", [down], went=cannot), Told("tencent", [])
    assert _channel(aliyun, tencent).send(_message()).provider == "tencent"


def test_when_every_provider_refuses_the_last_answer_decides_and_earlier_ones_are_listed() -> None:
    limited = ProviderResult(ErrorClass.rate_limited, error="limit")
    account = ProviderResult(ErrorClass.account, error="balance")
    result = _channel(Told("aliyun", [limited]), Told("tencent", [account])).send(_message())
    assert result.error_class == ErrorClass.account and result.provider == "tencent"
    assert [f.provider for f in result.failovers] == ["aliyun"]
    # A provider without credentials is passed over with its reason.
    channel = RoutedChannel("sms", parse_routes("+86=aliyun,tencent"), {"tencent": Told("tencent", [])},
                            {"aliyun": "Alibaba Cloud is not configured"})  # fmt: skip
    result = channel.send(_message())
    assert result.ok and result.failovers[0].reason == "Alibaba Cloud is not configured"


def test_before_a_resend_the_provider_of_the_last_attempt_is_asked() -> None:
    aliyun = Told("aliyun", [], went=None)
    tencent = Told("tencent", [], went=ProviderResult(ErrorClass.ok, provider_id="t-9"))
    channel = _channel(aliyun, tencent)
    found = channel.went_through(_message(provider="tencent"))
    assert found is not None and found.provider == "tencent" and found.provider_id == "t-9"
    assert tencent.asked == [7] and aliyun.asked == []
    assert channel.went_through(_message(provider=None)) is None and aliyun.asked == [7]
