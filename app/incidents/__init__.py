"""Incidents (突发事件): intake, reports (首报/续报/终报), timeline, acknowledgement and lifecycle."""
