"""Evidence photos (before/after): checked by decoding them with Pillow, re-encoded so that nothing but the picture
(and a few EXIF fields) is kept, and stored in the data directory, not the database.

A file is written before its row commits; should the transaction roll back, the file is removed again (an
`after_rollback` hook), so a refused or failed upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from app import audit
from app.auth.principal import Principal
from app.clock import Clock
from app.errors import DomainError, FieldError, Invalid, NotFound
from app.hazards import service as hazard_service
from app.hazards.errors import RoleRefused, StateRefused
from app.hazards.models import Hazard, HazardPhoto, Phase, Status

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 5 MB file that decodes to more than this is a decompression bomb
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}
# EXIF kept on a re-encoded photo: who took it with what, and when; the location only when configured.
KEPT_EXIF = (ExifTags.Base.Make, ExifTags.Base.Model, ExifTags.Base.DateTime)
PHASE_STATUSES = {
    Phase.before: (Status.open, Status.rectifying, Status.submitted),
    Phase.after: (Status.rectifying, Status.submitted),
}
_NEW_FILES = "hazards.new_files"


class PhotoTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


@dataclass(frozen=True)
class PhotoStore:
    """Where photos live (the data directory) and whether their EXIF location is kept."""

    root: Path
    keep_location: bool = False

    def path_of(self, photo: HazardPhoto) -> Path:
        return self.root / photo.path


@dataclass(frozen=True)
class Cleaned:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def clean(raw: bytes, *, keep_location: bool) -> Cleaned:
    """The photo decoded and encoded again; Invalid (422) when it is not a whole JPEG or PNG image."""
    if len(raw) > MAX_BYTES:
        why = f"the photo is {len(raw)} bytes; at most {MAX_BYTES} (5 MB)"
        raise PhotoTooLarge(f"file: {why}", fields=[FieldError("file", why)])
    if not raw:
        raise Invalid.field("file", "the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as probe:
                kind = probe.format
                probe.verify()  # the whole file's structure and checksums, before decoding the pixels
            if kind not in FORMATS:
                raise Invalid.field("file", f"a {kind or 'file of unknown kind'} is not a JPEG or PNG photo")
            image = Image.open(io.BytesIO(raw))
            if image.width * image.height > MAX_PIXELS:
                raise Invalid.field("file", f"{image.width}×{image.height} pixels is more than a photo needs")
            image.load()
    except Invalid:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Invalid.field("file", "not a JPEG or PNG image (it could not be decoded)") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise Invalid.field("file", f"the image is damaged or incomplete ({type(exc).__name__})") from exc
    original = image.getexif()
    # Orientation is applied to the pixels, so the copy needs no Orientation tag to be shown the right way up.
    upright = ImageOps.exif_transpose(image) or image
    exif = Image.Exif()
    for tag in KEPT_EXIF:
        if tag in original:
            exif[tag] = original[tag]
    if keep_location:
        gps = original.get_ifd(ExifTags.IFD.GPSInfo)
        if gps:
            exif[ExifTags.IFD.GPSInfo] = dict(gps)
    content_type, extension = FORMATS[str(kind)]
    out = io.BytesIO()
    if kind == "JPEG":
        if upright.mode not in ("RGB", "L"):
            upright = upright.convert("RGB")
        upright.save(out, "JPEG", quality=90, exif=exif.tobytes())
    else:
        if upright.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            upright = upright.convert("RGBA")
        upright.save(out, "PNG", exif=exif.tobytes())
    return Cleaned(out.getvalue(), content_type, extension, upright.width, upright.height)


def _write(store: PhotoStore, session: Session, relative: str, data: bytes) -> None:
    target = store.root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(target.suffix + ".part")
    temporary.write_bytes(data)
    os.replace(temporary, target)
    session.info.setdefault(_NEW_FILES, []).append(target)


@event.listens_for(OrmSession, "after_rollback")
def _remove_files_of_rolled_back(session: OrmSession) -> None:
    for path in session.info.pop(_NEW_FILES, []):
        try:
            path.unlink()
        except FileNotFoundError:
            pass


@event.listens_for(OrmSession, "after_commit")
def _keep_files_of_committed(session: OrmSession) -> None:
    session.info.pop(_NEW_FILES, None)


def add(
    session: Session,
    *,
    clock: Clock,
    actor: Principal,
    store: PhotoStore,
    hazard_id: int,
    phase: str,
    raw: bytes,
) -> tuple[Hazard, HazardPhoto]:
    """Attach a checked photo to a hazard: before (as found) or after (rectified)."""
    try:
        which = Phase(phase)
    except ValueError as exc:
        raise Invalid.field("phase", "must be before or after") from exc
    hazard, unit = hazard_service.lock(session, actor=actor, hazard_id=hazard_id)
    if not actor.can("hazards:write") or not actor.covers(unit):
        raise RoleRefused(
            action="photo",
            actor=actor.actor,
            roles=sorted(actor.roles),
            needs="an inspector, unit admin or admin of the hazard's unit adds photos",
            zh="由隐患所属单位的排查员或管理员上传照片",
        )
    allowed = PHASE_STATUSES[which]
    if hazard.status not in allowed:
        raise StateRefused(action=f"photo ({which})", status=hazard.status, allowed=tuple(str(s) for s in allowed))
    cleaned = clean(raw, keep_location=store.keep_location)
    relative = f"hazards/{hazard.id}/{which}-{uuid.uuid4().hex}.{cleaned.extension}"
    now = clock.now()
    photo = HazardPhoto(
        hazard_id=hazard.id or 0,
        phase=which,
        path=relative,
        content_type=cleaned.content_type,
        size_bytes=len(cleaned.data),
        width=cleaned.width,
        height=cleaned.height,
        sha256=hashlib.sha256(cleaned.data).hexdigest(),
        uploaded_by=actor.actor,
        uploaded_at=now,
    )
    session.add(photo)
    session.flush()
    _write(store, session, relative, cleaned.data)
    label = "整改前" if which == Phase.before else "整改后"
    hazard_service.note(
        session,
        hazard,
        at=now,
        kind="photo",
        actor=actor.actor,
        message=f"上传{label}照片（{cleaned.width}×{cleaned.height}）",
        data={"photo_id": photo.id, "phase": which},
    )
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="hazard.photo",
        object_type="hazard",
        object_id=hazard.id,
        unit_path=unit.path,
        after={"photo_id": photo.id, "phase": which, "sha256": photo.sha256, "size_bytes": photo.size_bytes},
    )
    hazard.updated_at = now
    session.add(hazard)
    session.flush()
    return hazard, photo


def of(session: Session, hazard: Hazard) -> list[HazardPhoto]:
    return list(
        session.exec(select(HazardPhoto).where(HazardPhoto.hazard_id == hazard.id).order_by(col(HazardPhoto.id))).all()
    )


def get(session: Session, *, actor: Principal, hazard_id: int, photo_id: int) -> HazardPhoto:
    hazard, _ = hazard_service.get(session, actor=actor, hazard_id=hazard_id)
    photo = session.get(HazardPhoto, photo_id)
    if photo is None or photo.hazard_id != hazard.id:
        raise NotFound(f"no photo {photo_id} on hazard {hazard_id}")
    return photo
