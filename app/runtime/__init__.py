"""The wiring of background work in the server process: the notification pipeline (`notify`) and the scheduler
that runs the escalation tick and roster alerts (`scheduler`). Domain packages never import from here."""
