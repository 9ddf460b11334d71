"""Authentication (passwords, JWT, API keys) and authority: the Principal and its scope checks."""
