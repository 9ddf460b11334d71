# dutyline: slim, non-root; applies migrations, then serves with uvicorn.
#   docker build -t dutyline .
#   docker run -p 8000:8000 -e DATABASE_URL=postgresql+psycopg://user:pw@db/dutyline \
#     -e DUTYLINE_SECRET_KEY=... -e PUBLIC_BASE_URL=https://duty.example.org dutyline
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --system --create-home --home-dir /srv/dutyline --uid 10001 dutyline
WORKDIR /srv/dutyline

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
# Editable, so `dutyline migrate` finds alembic.ini and migrations/ next to the package.
RUN pip install -e . && mkdir -p var && chown dutyline:dutyline var

USER dutyline
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["sh", "-c", "dutyline migrate && exec dutyline serve --host 0.0.0.0 --port 8000 --forwarded-allow-ips '*'"]
