"""The notification pipeline: a durable outbox, a dispatcher, and the channels behind it (SMS, voice, webhooks)."""
