"""Twilio, for numbers outside the mainland: the SMS and voice channels of `app.notify.channels`, named."""

from __future__ import annotations

from app.notify.channels import ChannelMessage, ProviderResult
from app.notify.channels.sms import SmsChannel
from app.notify.channels.voice import VoiceChannel
from app.notify.models import ErrorClass

NAME = "twilio"


class TwilioSms:
    name = NAME

    def __init__(self, channel: SmsChannel) -> None:
        self.channel = channel

    def send(self, message: ChannelMessage) -> ProviderResult:
        return self.channel.send(message)

    def went_through(self, message: ChannelMessage) -> ProviderResult | None:
        """Twilio knows messages by recipient and text, not by our id: the candidates it holds; the dispatcher
        adopts one no other row has claimed (`extra["candidates"]`)."""
        candidates = self.channel.previous_sends(message)
        if not candidates:
            return None
        return ProviderResult(ErrorClass.ok, extra={"candidates": candidates})


class TwilioVoice:
    name = NAME

    def __init__(self, channel: VoiceChannel) -> None:
        self.channel = channel

    def send(self, message: ChannelMessage) -> ProviderResult:
        return self.channel.send(message)

    def went_through(self, message: ChannelMessage) -> ProviderResult | None:
        """A call carries nothing of ours that Twilio's list returns: the calls placed to that number since the
        row was written are the candidates; the dispatcher adopts one no other row holds."""
        candidates = self.channel.previous_sends(message)
        if not candidates:
            return None
        return ProviderResult(ErrorClass.ok, extra={"candidates": candidates})
