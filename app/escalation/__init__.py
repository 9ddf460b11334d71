"""Graded response: severity grading, the rules document, and the tier-by-tier escalation engine."""
