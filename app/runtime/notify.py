"""Glue between the settings and the notification pipeline: provider credentials, the channels and their
routes, the dispatcher in the app's lifespan, and the built-in simulator mounted at /sim when it is on (the
mainland providers' APIs at the root path, where their SDKs post)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from fastapi import FastAPI
from prometheus_client import Counter
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from app.auth import tokens
from app.clock import Clock
from app.config import Settings
from app.db import reader, transaction
from app.notify import inbound, message_templates
from app.notify.channels import Channel, ChannelUnavailable
from app.notify.channels.robot import RobotChannel
from app.notify.channels.sms import SmsChannel
from app.notify.channels.twilio_client import make_client
from app.notify.channels.voice import VoiceChannel
from app.notify.channels.webhook import WebhookChannel
from app.notify.dispatcher import DispatchConfig, Dispatcher
from app.notify.message_templates import TemplateBook
from app.notify.providers import Provider
from app.notify.providers.aliyun_sms import AliyunSms
from app.notify.providers.aliyun_voice import AliyunVoice
from app.notify.providers.routing import RoutedChannel, parse_routes, providers_in
from app.notify.providers.tencent_sms import TencentSms
from app.notify.providers.twilio import TwilioSms, TwilioVoice
from app.notify.simulator import ProviderApis, SimulatorConfig, SimulatorState, create_simulator
from app.notify.simulator import credentials as sim_credentials
from app.routers.simulator_access import admin_guard

TWILIO_API = "https://api.twilio.com"
log = logging.getLogger("dutyline.notify")


@dataclass(frozen=True)
class TwilioAccess:
    account_sid: str | None
    auth_tokens: list[str]
    from_number: str
    api_base_url: str

    @property
    def configured(self) -> bool:
        return bool(self.account_sid and self.auth_tokens)


def twilio_access(settings: Settings, simulator: sim_credentials.TwilioCredentials | None = None) -> TwilioAccess:
    """The Twilio account in use: the configured one, or (simulator on, no Twilio credentials) the simulator's."""
    if settings.simulator_enabled:
        base = settings.twilio_api_base_url or f"{settings.public_base_url}/sim"
        configured = bool(settings.twilio_account_sid and settings.twilio_auth_tokens)
        return TwilioAccess(
            account_sid=settings.twilio_account_sid if configured else (simulator.account_sid if simulator else None),
            auth_tokens=settings.twilio_auth_tokens if configured else ([simulator.auth_token] if simulator else []),
            from_number=settings.twilio_from_number or SimulatorConfig.service_number,
            api_base_url=base.rstrip("/"),
        )
    return TwilioAccess(
        account_sid=settings.twilio_account_sid,
        auth_tokens=settings.twilio_auth_tokens,
        from_number=settings.twilio_from_number or "",
        api_base_url=(settings.twilio_api_base_url or TWILIO_API).rstrip("/"),
    )


@dataclass
class MainlandAccess:
    """Alibaba Cloud's and Tencent Cloud's credentials in use: the configured ones, or the simulator's for a
    provider without credentials while the simulator is on (`simulated`); None: the provider is unavailable."""

    aliyun_key: tuple[str, str] | None
    aliyun_sms_endpoint: str | None
    aliyun_voice_endpoint: str | None
    aliyun_sign_name: str | None
    aliyun_show_number: str | None
    tencent_key: tuple[str, str] | None
    tencent_app_id: str | None
    tencent_endpoint: str | None
    tencent_sign_name: str | None
    tencent_pull: bool
    simulated: frozenset[str]


def mainland_access(settings: Settings, sim: SimulatorConfig | None) -> MainlandAccess:
    simulated: set[str] = set()
    root = settings.public_base_url  # the simulator serves the providers' APIs at the root path
    aliyun_key: tuple[str, str] | None = None
    if settings.alibaba_access_key_id and settings.alibaba_access_key_secret:
        aliyun_key = (settings.alibaba_access_key_id, settings.alibaba_access_key_secret)
    elif sim is not None:
        aliyun_key = (sim.aliyun_access_key_id, sim.aliyun_access_key_secret)
        simulated.add("aliyun")
    tencent_key: tuple[str, str] | None = None
    app_id = settings.tencent_sms_sdk_app_id
    if settings.tencent_secret_id and settings.tencent_secret_key and app_id:
        tencent_key = (settings.tencent_secret_id, settings.tencent_secret_key)
    elif sim is not None:
        tencent_key, app_id = (sim.tencent_secret_id, sim.tencent_secret_key), sim.tencent_sdk_app_id
        simulated.add("tencent")
    in_sim = "aliyun" in simulated
    return MainlandAccess(
        aliyun_key=aliyun_key,
        aliyun_sms_endpoint=settings.aliyun_sms_endpoint or (root if in_sim else None),
        aliyun_voice_endpoint=settings.aliyun_voice_endpoint or (root if in_sim else None),
        aliyun_sign_name=settings.aliyun_sms_sign_name or ("应急值守" if in_sim else None),
        aliyun_show_number=settings.aliyun_voice_show_number or ("01066666110" if in_sim else None),
        tencent_key=tencent_key,
        tencent_app_id=app_id,
        tencent_endpoint=settings.tencent_sms_endpoint or (root if "tencent" in simulated else None),
        tencent_sign_name=settings.tencent_sms_sign_name or ("应急值守" if "tencent" in simulated else None),
        tencent_pull=settings.tencent_sms_pull or "tencent" in simulated,
        simulated=frozenset(simulated),
    )


def _derived(secret: str, label: str, size: int) -> str:
    return hmac.new(secret.encode(), label.encode(), hashlib.sha256).hexdigest()[:size]


def install(app: FastAPI, settings: Settings) -> None:
    """At app creation: the acknowledgement seam and, when on, the simulator mount (its phone side for admins;
    the mainland providers' APIs at the root path).

    The simulator's credentials are read from the database in the lifespan (`start`); until then it holds
    random ones nobody knows."""
    app.state.acknowledger = inbound.default_acknowledger
    app.state.delivery_observers = []
    app.state.twilio = twilio_access(settings)
    app.state.simulator = None
    if settings.simulator_enabled:
        config = SimulatorConfig(
            service_number=app.state.twilio.from_number,
            inbound_url=f"{settings.public_base_url}/twilio/sms/inbound",
        )
        sim = create_simulator(config, guard=admin_guard(app))
        app.state.simulator = sim.state.sim
        app.mount("/sim", sim, name="twilio-simulator")
        app.add_middleware(ProviderApis, state=sim.state.sim)


def _load_simulator_credentials(app: FastAPI) -> None:
    """Simulator on: its per-installation Twilio credentials, shared by our Twilio client and the simulator."""
    settings: Settings = app.state.settings
    state: SimulatorState | None = app.state.simulator
    if not settings.simulator_enabled:
        return
    try:
        with transaction(app.state.engine) as session:
            secret = sim_credentials.installation_secret(session, clock=app.state.clock)
    except OperationalError:
        # The database is away at start: the simulator keeps the random credentials of this process only.
        log.error("database unavailable at start: the simulator's Twilio credentials are this process's own")
        assert state is not None
        secret = state.config.auth_token
    access = twilio_access(settings, sim_credentials.twilio(secret))
    app.state.twilio = access
    if state is not None and access.account_sid:
        state.config.account_sid, state.config.auth_token = access.account_sid, access.auth_tokens[0]


def _sim_credentials(session: Session, sim: SimulatorState, *, clock: Clock) -> None:
    """The simulator's Alibaba Cloud and Tencent Cloud key pairs, random per installation (kept in the
    database, so every replica and restart signs with the same ones)."""
    secret = tokens.instance_secret(session, "simulator-mainland", clock=clock)
    cfg = sim.config
    cfg.aliyun_access_key_id = "LTAI5t" + _derived(secret, "aliyun-id", 18)
    cfg.aliyun_access_key_secret = _derived(secret, "aliyun-secret", 30)
    cfg.tencent_secret_id = "AKID" + _derived(secret, "tencent-id", 32)
    cfg.tencent_secret_key = _derived(secret, "tencent-secret", 32)


def _sim_credentials_random(sim: SimulatorState) -> None:
    cfg = sim.config
    cfg.aliyun_access_key_id = "LTAI5t" + secrets.token_hex(9)
    cfg.aliyun_access_key_secret = secrets.token_hex(15)
    cfg.tencent_secret_id = "AKID" + secrets.token_hex(16)
    cfg.tencent_secret_key = secrets.token_hex(16)


def callback_urls(base: str, token: str) -> dict[str, str]:
    return {
        "aliyun_sms_report_url": f"{base}/callbacks/aliyun/{token}/sms-report",
        "aliyun_sms_up_url": f"{base}/callbacks/aliyun/{token}/sms-up",
        "aliyun_voice_report_url": f"{base}/callbacks/aliyun/{token}/voice-report",
        "tencent_sms_status_url": f"{base}/callbacks/tencent/{token}/sms-status",
        "tencent_sms_reply_url": f"{base}/callbacks/tencent/{token}/sms-reply",
    }


def template_book(engine: Engine) -> TemplateBook:
    def load() -> message_templates.TemplatesDocument:
        with Session(reader(engine)) as session:
            return message_templates.current(session)

    return TemplateBook(load)


def routed_providers(settings: Settings) -> dict[str, list[str]]:
    """Every provider a route uses, by channel (what the message-templates document must bind)."""
    return {
        "sms": providers_in(parse_routes(settings.sms_routes)),
        "voice": providers_in(parse_routes(settings.voice_routes)),
    }


def build_channels(
    settings: Settings,
    access: TwilioAccess,
    *,
    clock: object,
    mainland: MainlandAccess | None = None,
    book: TemplateBook | None = None,
) -> dict[str, Channel]:
    base = settings.public_base_url
    channels: dict[str, Channel] = {}
    book = book or TemplateBook.fixed(message_templates.demo_document())
    mainland = mainland or mainland_access(settings, None)
    sms: dict[str, Provider] = {}
    voice: dict[str, Provider] = {}
    unavailable: dict[str, str] = {}
    timeout = settings.provider_timeout_seconds
    pool = settings.dispatch_concurrency
    if mainland.aliyun_key is not None:
        key_id, key_secret = mainland.aliyun_key
        sms["aliyun"] = AliyunSms(
            access_key_id=key_id,
            access_key_secret=key_secret,
            sign_name=mainland.aliyun_sign_name,
            book=book,
            endpoint=mainland.aliyun_sms_endpoint,
            timeout=timeout,
            pool_size=pool,
        )
        voice["aliyun"] = AliyunVoice(
            access_key_id=key_id,
            access_key_secret=key_secret,
            show_number=mainland.aliyun_show_number,
            book=book,
            endpoint=mainland.aliyun_voice_endpoint,
            timeout=timeout,
        )
    else:
        unavailable["aliyun"] = "Alibaba Cloud is not configured (ALIBABA_CLOUD_ACCESS_KEY_ID, …_SECRET)"
    if mainland.tencent_key is not None and mainland.tencent_app_id:
        sms["tencent"] = TencentSms(
            secret_id=mainland.tencent_key[0],
            secret_key=mainland.tencent_key[1],
            sdk_app_id=mainland.tencent_app_id,
            sign_name=mainland.tencent_sign_name,
            book=book,
            endpoint=mainland.tencent_endpoint,
            timeout=timeout,
            pull_status=mainland.tencent_pull,
        )
    else:
        unavailable["tencent"] = (
            "Tencent Cloud is not configured (TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY, TENCENT_SMS_SDK_APP_ID)"
        )
    if access.configured and access.from_number:
        assert access.account_sid is not None
        client = make_client(
            access.account_sid,
            access.auth_tokens[0],
            base_url=access.api_base_url,
            timeout=settings.twilio_timeout_seconds,
        )
        sms["twilio"] = TwilioSms(
            SmsChannel(client, from_number=access.from_number, status_callback_url=f"{base}/twilio/sms/status")
        )
        voice["twilio"] = TwilioVoice(
            VoiceChannel(
                client,
                from_number=access.from_number,
                answer_url=f"{base}/twilio/voice/answer",
                status_callback_url=f"{base}/twilio/voice/status",
            )
        )
    else:
        unavailable["twilio"] = "Twilio is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)"
    channels["sms"] = RoutedChannel("sms", parse_routes(settings.sms_routes), sms, unavailable)
    channels["voice"] = RoutedChannel("voice", parse_routes(settings.voice_routes), voice, unavailable)
    if not sms and not voice:
        # Nothing at all can page: say so once per message, as before.
        channels["sms"] = channels["voice"] = ChannelUnavailable(
            "no SMS or voice provider is configured (Twilio, Alibaba Cloud, Tencent Cloud)"
        )
    channels["webhook"] = WebhookChannel(
        clock=clock,  # type: ignore[arg-type]
        timeout=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private,
    )
    channels["robot"] = RobotChannel(
        clock=clock,  # type: ignore[arg-type]
        timeout=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private,
    )
    return channels


def start(app: FastAPI) -> None:
    """In the lifespan: build the dispatcher (tests drive it by hand) and run it when enabled."""
    settings: Settings = app.state.settings
    _load_simulator_credentials(app)
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
    sim: SimulatorState | None = app.state.simulator
    token = settings.callback_token
    try:
        with transaction(app.state.engine) as session:
            token = token or tokens.instance_secret(session, "provider-callbacks", clock=app.state.clock)
            if sim is not None:
                _sim_credentials(session, sim, clock=app.state.clock)
    except OperationalError:
        # The database is away at start (it answers 503 until it is back): the callbacks take no push until
        # a restart, and the simulator signs with keys of this process only.
        log.error("database unavailable at start: provider callbacks are closed until a restart")
        if sim is not None:
            _sim_credentials_random(sim)
    app.state.callback_token = token or secrets.token_urlsafe(32)
    if sim is not None and token:
        for name, url in callback_urls(settings.public_base_url, token).items():
            setattr(sim.config, name, url)
    app.state.mainland = mainland_access(settings, sim.config if sim is not None else None)
    app.state.template_book = template_book(app.state.engine)
    channels = build_channels(
        settings, app.state.twilio, clock=app.state.clock, mainland=app.state.mainland, book=app.state.template_book
    )
    app.state.dispatcher = Dispatcher(
        app.state.engine,
        clock=app.state.clock,
        channels=channels,
        config=config,
        observers=app.state.delivery_observers,
    )
    if settings.dispatcher:
        app.state.dispatcher.start()


def install_metrics(app: FastAPI) -> None:
    """After the registry exists: the count of pushed items for messages we do not know."""
    app.state.push_ignored = Counter(
        "dutyline_provider_push_items_ignored",
        "Receipt and reply items from Alibaba Cloud and Tencent Cloud that matched no message",
        labelnames=["provider", "kind"],
        registry=app.state.metrics,
    )


def stop(app: FastAPI) -> None:
    dispatcher: Dispatcher | None = getattr(app.state, "dispatcher", None)
    if dispatcher is not None:
        dispatcher.stop()
