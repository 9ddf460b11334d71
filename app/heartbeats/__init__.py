"""Integration heartbeats: agency systems ping; a missed interval pages the city duty officer once."""
