"""dutyline: emergency duty rosters and three-tier incident escalation."""
