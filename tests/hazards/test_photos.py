"""Evidence photos: decoded and re-encoded (nothing rides along), EXIF location stripped or kept, stored in the data
directory, refused with 413/422 and nothing written when they are not photos."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from app.auth.principal import Principal
from app.clock import ManualClock
from app.config import Settings
from app.db import transaction
from app.hazards import photos
from app.hazards.models import HazardPhoto
from app.main import create_app
from tests.hazards.helpers import create, image_bytes, photo, team

GPS = {1: "N", 2: (39.0, 52.0, 12.0), 3: "E", 4: (116.0, 21.0, 36.0)}


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Huawei"
    exif[ExifTags.IFD.GPSInfo] = GPS
    return exif


def stored_files(settings: Settings) -> list[Path]:
    return sorted(p for p in Path(settings.data_dir).rglob("*") if p.is_file())


def test_a_photo_is_re_encoded_and_served_back(
    client: TestClient, session: Session, clock: ManualClock, settings: Settings
) -> None:
    t = team(client, session, clock)
    h = create(client, t["inspector"], clock)
    payload = b"<?php system($_GET['c']); ?>"
    raw = image_bytes("JPEG", exif=gps_exif()) + payload  # bytes after the JPEG's end ride along unless re-encoded
    r = photo(client, t["inspector"], h["id"], phase="before", data=raw)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["phase"], body["content_type"], body["width"], body["height"]) == ("before", "image/jpeg", 64, 48)
    files = stored_files(settings)
    assert len(files) == 1 and files[0].parent.name == str(h["id"])
    kept = files[0].read_bytes()
    assert payload not in kept
    with Image.open(io.BytesIO(kept)) as image:
        exif = image.getexif()
        assert exif[ExifTags.Base.Make] == "Huawei"
        assert not exif.get_ifd(ExifTags.IFD.GPSInfo)  # the location is stripped by default
    served = client.get(body["url"], headers=t["street_leader"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert served.content == kept
    assert client.get(body["url"], headers=t["other_inspector"]).status_code == 404
    detail = client.get(f"/api/v1/hazards/{h['id']}", headers=t["inspector"]).json()
    assert [p["id"] for p in detail["photos"]] == [body["id"]]
    assert detail["timeline"][-1]["kind"] == "photo"

    png = photo(client, t["inspector"], h["id"], phase="before", data=image_bytes("PNG"))
    assert png.status_code == 201 and png.json()["content_type"] == "image/png"


def test_the_location_is_kept_when_configured(
    engine: Engine, session: Session, clock: ManualClock, settings: Settings
) -> None:
    keep = settings.model_copy(update={"hazard_photo_location": "keep"})
    with TestClient(create_app(keep, engine=engine, clock=clock)) as client:
        t = team(client, session, clock)
        h = create(client, t["inspector"], clock)
        r = photo(client, t["inspector"], h["id"], phase="before", data=image_bytes("JPEG", exif=gps_exif()))
        assert r.status_code == 201
        with Image.open(io.BytesIO(client.get(r.json()["url"], headers=t["inspector"]).content)) as image:
            assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo)[2] == GPS[2]


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"%PDF-1.4 not a photo", 422, "not a JPEG or PNG"),
        (b"", 422, "empty"),
        (image_bytes("GIF"), 422, "not a JPEG or PNG"),
        (image_bytes("JPEG", size=(400, 300))[:300], 422, "damaged"),
        (b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024), 413, "5 MB"),
    ],
)
def test_what_is_not_a_photo_is_refused_and_nothing_is_written(
    client: TestClient, session: Session, clock: ManualClock, settings: Settings, data: bytes, status: int, reason: str
) -> None:
    t = team(client, session, clock)
    h = create(client, t["inspector"], clock)
    r = photo(client, t["inspector"], h["id"], phase="before", data=data)
    assert r.status_code == status, r.text
    assert reason in r.text
    assert r.json()["errors"][0]["field"] == "file"
    session.commit()
    assert session.exec(select(func.count()).select_from(HazardPhoto)).one() == 0
    assert stored_files(settings) == []
    detail = client.get(f"/api/v1/hazards/{h['id']}", headers=t["inspector"]).json()
    assert [e["kind"] for e in detail["timeline"]] == ["reported"]
    bad_phase = photo(client, t["inspector"], h["id"], phase="during")
    assert bad_phase.status_code == 422 and bad_phase.json()["errors"][0]["field"] == "phase"


def test_a_rolled_back_upload_leaves_no_file(
    client: TestClient, engine: Engine, session: Session, clock: ManualClock, settings: Settings
) -> None:
    t = team(client, session, clock)
    h = create(client, t["inspector"], clock)
    store = photos.PhotoStore(Path(settings.data_dir))
    written: list[int] = []

    def upload_then_fail() -> None:
        with transaction(engine) as tx:
            photos.add(tx, clock=clock, actor=Principal.system(), store=store, hazard_id=h["id"], phase="before",
                       raw=image_bytes())  # fmt: skip
            written.append(len(stored_files(settings)))
            raise RuntimeError("the request fails after the file was written")

    with pytest.raises(RuntimeError):
        upload_then_fail()
    assert written == [1]
    assert stored_files(settings) == []
