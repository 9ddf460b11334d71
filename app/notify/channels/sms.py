"""SMS through Twilio's Messages API."""

from __future__ import annotations

from twilio.rest import Client

from app.notify.channels import ChannelMessage, ProviderResult
from app.notify.channels.twilio_client import classify
from app.notify.models import ErrorClass

# One page of Twilio's Messages list holds at most 1,000.
PREVIOUS_SENDS_LOOKBACK = 1000


class SmsChannel:
    def __init__(self, client: Client, *, from_number: str, status_callback_url: str | None) -> None:
        self.client = client
        self.from_number = from_number
        # `?oid=<outbox id>` lets a receipt find its row even before the create call has returned the SID.
        self.status_callback_url = status_callback_url

    def _callback(self, message: ChannelMessage) -> str | None:
        if not self.status_callback_url:
            return None
        sep = "&" if "?" in self.status_callback_url else "?"
        return f"{self.status_callback_url}{sep}oid={message.id}"

    def previous_sends(self, message: ChannelMessage) -> list[str]:
        """After an attempt that may have gone through (a timeout): the SIDs of messages Twilio already holds
        with this recipient and text. The dispatcher adopts one no other row has claimed instead of resending.

        Twilio lists newest first. A busy recipient (the city duty officer in a storm) gets hundreds of pages
        while a dead replica's lease runs out, so the look-back covers the newest PREVIOUS_SENDS_LOOKBACK
        (found by the crash drill: with 100, two pages to the city officer were sent twice)."""
        sent = self.client.messages.list(to=message.to, from_=self.from_number, limit=PREVIOUS_SENDS_LOOKBACK)
        return [m.sid for m in sent if m.body == message.body and m.sid]

    def send(self, message: ChannelMessage) -> ProviderResult:
        try:
            created = self.client.messages.create(
                to=message.to, from_=self.from_number, body=message.body, status_callback=self._callback(message)
            )
        except Exception as exc:  # every provider failure becomes an error class, never an exception
            return classify(exc)
        return ProviderResult(ErrorClass.ok, provider_id=created.sid, extra={"status": created.status})
