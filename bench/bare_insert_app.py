"""The intake benchmark's baseline: an endpoint that validates a small JSON body and does one INSERT, one commit.

Used only by bench/bench_incidents.py (never part of the product); served by uvicorn the same way as the product.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, Table, Text

from app.db import make_engine

engine = make_engine(os.environ["DATABASE_URL"])
# A scratch table of the benchmark's own (the product's schema comes only from migrations).
scratch = MetaData()
bench_bare = Table("bench_bare", scratch, Column("id", Integer, primary_key=True), Column("body", Text, nullable=False))
scratch.create_all(engine)

app = FastAPI()


class Body(BaseModel):
    external_id: str
    title: str


@app.post("/bare", status_code=201)
def bare(body: Body) -> dict[str, str]:
    with engine.begin() as conn:
        conn.execute(bench_bare.insert().values(body=body.model_dump_json()))
    return {"status": "ok"}
