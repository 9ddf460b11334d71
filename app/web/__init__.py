"""The duty console: server-rendered pages (Jinja2), a signed session cookie and CSRF tokens."""
