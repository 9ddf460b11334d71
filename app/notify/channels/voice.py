"""Voice calls through Twilio's Calls API: Twilio fetches the TwiML (a Chinese <Say> and a <Gather>) from us."""

from __future__ import annotations

from twilio.rest import Client

from app.notify.channels import ChannelMessage, ProviderResult
from app.notify.channels.twilio_client import classify
from app.notify.models import ErrorClass


class VoiceChannel:
    def __init__(self, client: Client, *, from_number: str, answer_url: str, status_callback_url: str | None) -> None:
        self.client = client
        self.from_number = from_number
        self.answer_url = answer_url
        self.status_callback_url = status_callback_url

    @staticmethod
    def _with_oid(url: str, message: ChannelMessage) -> str:
        return f"{url}{'&' if '?' in url else '?'}oid={message.id}"

    def send(self, message: ChannelMessage) -> ProviderResult:
        callback = self._with_oid(self.status_callback_url, message) if self.status_callback_url else None
        try:
            call = self.client.calls.create(
                to=message.to,
                from_=self.from_number,
                url=self._with_oid(self.answer_url, message),
                method="POST",
                status_callback=callback,
                status_callback_event=["answered", "completed"] if callback else None,
                status_callback_method="POST",
            )
        except Exception as exc:
            return classify(exc)
        return ProviderResult(ErrorClass.ok, provider_id=call.sid, extra={"status": call.status})
