"""Glue between the settings and the notification pipeline: Twilio credentials, the channels, the
dispatcher in the app's lifespan, and the built-in Twilio simulator mounted at /sim when it is on."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from app.config import Settings
from app.notify import inbound
from app.notify.channels import Channel, ChannelUnavailable
from app.notify.channels.sms import SmsChannel
from app.notify.channels.twilio_client import make_client
from app.notify.channels.voice import VoiceChannel
from app.notify.channels.webhook import WebhookChannel
from app.notify.dispatcher import DispatchConfig, Dispatcher
from app.notify.simulator import SimulatorConfig, create_simulator

TWILIO_API = "https://api.twilio.com"


@dataclass(frozen=True)
class TwilioAccess:
    account_sid: str | None
    auth_tokens: list[str]
    from_number: str
    api_base_url: str

    @property
    def configured(self) -> bool:
        return bool(self.account_sid and self.auth_tokens)


def twilio_access(settings: Settings) -> TwilioAccess:
    """The Twilio account in use: the configured one, or the simulator's when it stands in for Twilio."""
    sim = SimulatorConfig()
    if settings.simulator_enabled:
        base = settings.twilio_api_base_url or f"{settings.public_base_url}/sim"
        return TwilioAccess(
            account_sid=settings.twilio_account_sid or sim.account_sid,
            auth_tokens=settings.twilio_auth_tokens or [sim.auth_token],
            from_number=settings.twilio_from_number or sim.service_number,
            api_base_url=base.rstrip("/"),
        )
    return TwilioAccess(
        account_sid=settings.twilio_account_sid,
        auth_tokens=settings.twilio_auth_tokens,
        from_number=settings.twilio_from_number or "",
        api_base_url=(settings.twilio_api_base_url or TWILIO_API).rstrip("/"),
    )


def install(app: FastAPI, settings: Settings) -> None:
    """At app creation: the acknowledgement seam and, when on, the simulator mount."""
    app.state.acknowledger = inbound.default_acknowledger
    access = twilio_access(settings)
    app.state.twilio = access
    if settings.simulator_enabled:
        config = SimulatorConfig(
            account_sid=access.account_sid or SimulatorConfig().account_sid,
            auth_token=access.auth_tokens[0],
            service_number=access.from_number,
            inbound_url=f"{settings.public_base_url}/twilio/sms/inbound",
        )
        app.mount("/sim", create_simulator(config), name="twilio-simulator")


def build_channels(settings: Settings, access: TwilioAccess, *, clock: object) -> dict[str, Channel]:
    base = settings.public_base_url
    channels: dict[str, Channel] = {}
    if access.configured and access.from_number:
        assert access.account_sid is not None
        client = make_client(
            access.account_sid,
            access.auth_tokens[0],
            base_url=access.api_base_url,
            timeout=settings.twilio_timeout_seconds,
        )
        channels["sms"] = SmsChannel(
            client, from_number=access.from_number, status_callback_url=f"{base}/twilio/sms/status"
        )
        channels["voice"] = VoiceChannel(
            client,
            from_number=access.from_number,
            answer_url=f"{base}/twilio/voice/answer",
            status_callback_url=f"{base}/twilio/voice/status",
        )
    else:
        missing = ChannelUnavailable("Twilio is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)")
        channels["sms"] = missing
        channels["voice"] = missing
    channels["webhook"] = WebhookChannel(clock=clock, timeout=settings.webhook_timeout_seconds)  # type: ignore[arg-type]
    return channels


def start(app: FastAPI) -> None:
    """In the lifespan: build the dispatcher (tests drive it by hand) and run it when enabled."""
    settings: Settings = app.state.settings
    config = DispatchConfig(
        concurrency=settings.dispatch_concurrency,
        max_attempts=settings.dispatch_max_attempts,
        lease_seconds=settings.dispatch_lease_seconds,
        poll_seconds=settings.dispatch_poll_seconds,
        backoff_base_seconds=settings.dispatch_backoff_seconds,
        backoff_max_seconds=settings.dispatch_backoff_max_seconds,
        rates={
            "sms": settings.sms_rate_per_second,
            "voice": settings.voice_rate_per_second,
            "webhook": settings.webhook_rate_per_second,
        },
    )
    channels = build_channels(settings, app.state.twilio, clock=app.state.clock)
    app.state.dispatcher = Dispatcher(app.state.engine, clock=app.state.clock, channels=channels, config=config)
    if settings.dispatcher:
        app.state.dispatcher.start()


def stop(app: FastAPI) -> None:
    dispatcher: Dispatcher | None = getattr(app.state, "dispatcher", None)
    if dispatcher is not None:
        dispatcher.stop()
