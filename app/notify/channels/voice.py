"""Voice calls through Twilio's Calls API: Twilio fetches the TwiML (a Chinese <Say> and a <Gather>) from us."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from twilio.rest import Client

from app.notify.channels import ChannelMessage, ProviderResult
from app.notify.channels.twilio_client import classify
from app.notify.models import ErrorClass

# Twilio lists calls newest first; a leader paged by voice in a storm gets tens, not thousands.
PREVIOUS_CALLS_LOOKBACK = 1000
# Our clock and Twilio's may differ a little: a call made for this row is never older than this before it.
CLOCK_SKEW = timedelta(minutes=2)


class VoiceChannel:
    def __init__(self, client: Client, *, from_number: str, answer_url: str, status_callback_url: str | None) -> None:
        self.client = client
        self.from_number = from_number
        self.answer_url = answer_url
        self.status_callback_url = status_callback_url

    @staticmethod
    def _with_oid(url: str, message: ChannelMessage) -> str:
        return f"{url}{'&' if '?' in url else '?'}oid={message.id}"

    def previous_sends(self, message: ChannelMessage) -> list[str]:
        """After an attempt that may have gone through (a timeout, a replica that died mid-call): the SIDs of
        calls Twilio already placed from our number to this one since the row was written, oldest first.
        The dispatcher adopts one no other row has claimed instead of calling again.

        A call carries nothing of ours that the list returns (its TwiML URL with `?oid=` is not listed), so a
        call is matched by recipient and time. The time is checked here on `date_created`, not with Twilio's
        StartTime filter: a call still queued at Twilio (its calls-per-second queue) has no start time yet."""
        since = message.created_at - CLOCK_SKEW if message.created_at else None
        calls = self.client.calls.list(to=message.to, from_=self.from_number, limit=PREVIOUS_CALLS_LOOKBACK)
        found = [c for c in calls if c.sid and (since is None or c.date_created is None or c.date_created >= since)]
        found.sort(key=lambda c: c.date_created or datetime.max.replace(tzinfo=UTC))
        return [str(c.sid) for c in found]

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
