"""Photo evidence of one city: upload to a case, read back in scope, the flagged list and
the retention sweep.

Who may upload: a report photo needs ``cases.report``, a feedback photo ``cases.feedback``,
a verification photo ``cases.verify`` — and the case in the uploader's scope (the scope rule of
cases: a case outside it is 404, as reading it is); an inspection photo (交叉考核) needs
``assessment.score`` and an assignment to score that grid in an open round. Who may read:
anyone whose scope includes the case; an inspection photo, its scorer and the organisers of
rounds whose scope holds the grid. What they get: an EXIF-free, upright JPEG re-encoded at
upload (and a thumbnail); the original with its EXIF, and videos (whose metadata cannot be
stripped without ffmpeg), only with ``people.read``.

Nothing is half-stored: the row is written first, the files are staged before the commit and
made visible only after it (``_after_commit``); a rollback discards them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import any_, event, func, select
from sqlalchemy.orm import Session

from service.accounts.principal import Principal
from service.accounts.scope import case_condition, sees_case
from service.clock import now
from service.datums import to_wgs84_point
from service.db.models import Case, InspectionRound, Photo, RoundAssignment
from service.errors import Forbidden, InvalidInput, NotFound
from service.photos.evidence import CHECKED_STEPS, check_evidence, find_reuse
from service.photos.media import Media, read_media
from service.photos.s3 import S3Store
from service.photos.store import VARIANTS, FileSystemStore, PhotoStore, file_key
from service.settings import AppSettings

# step → (permission, default stage)
STEPS: dict[str, tuple[str, str]] = {
    "report": ("cases.report", "before"),
    "feedback": ("cases.feedback", "after"),
    "verification": ("cases.verify", "after"),
}
STAGES = ("before", "during", "after")
# photos the background retention sweep marks per round (every CITYGRID_NOTIFY_SWEEP_INTERVAL_S)
SWEEP_BATCH = 5_000
PEOPLE_READ = "people.read"
# a staged file older than this belongs to no upload still running (requests last seconds)
STAGING_GRACE = timedelta(hours=1)


@dataclass
class PhotoUpload:
    """One uploaded file and what the uploader says about it."""

    data: bytes
    step: str
    stage: str | None = None
    lon: float | None = None
    lat: float | None = None
    datum: str = "wgs84"
    accuracy_m: float | None = None


def store_for(settings: AppSettings) -> PhotoStore:
    """The configured photo store: the S3-compatible bucket when ``CITYGRID_PHOTO_S3_BUCKET``
    is set, else the folder."""
    p = settings.photos
    if p.s3_bucket:
        secret = p.s3_secret_access_key
        return S3Store(
            p.s3_bucket,
            prefix=p.s3_prefix,
            endpoint_url=p.s3_endpoint_url,
            region=p.s3_region,
            addressing_style=p.s3_addressing_style,
            access_key_id=p.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
        )
    return FileSystemStore(settings.photo_dir())


class PhotoService:
    """Photo operations for one city on one session."""

    def __init__(
        self, session: Session, settings: AppSettings, store: PhotoStore | None = None
    ) -> None:
        self.session = session
        self.settings = settings
        self.city = settings.grids.city
        self.store = store or store_for(settings)

    # -- upload ----------------------------------------------------------------------------
    def upload(self, case_id: int, item: PhotoUpload, by: Principal) -> Photo:
        """Store a photo or video of case ``case_id`` by ``by``, check it, and return it."""
        if item.step not in STEPS:
            raise InvalidInput(
                f"unknown step {item.step!r}; use one of {', '.join(STEPS)}", field="step"
            )
        permission, default_stage = STEPS[item.step]
        stage = item.stage or default_stage
        if stage not in STAGES:
            raise InvalidInput(
                f"unknown stage {stage!r}; use one of {', '.join(STAGES)}", field="stage"
            )
        self._reported_position(item)  # bad input is answered before anything is read
        by.require(permission)
        case = self._case(case_id, by)
        photo = self._store(item, stage, by, (case.id, None, None))
        if item.step in CHECKED_STEPS and stage == "after":
            check_evidence(
                self.session,
                self.city,
                self.settings.photos.evidence_distance_m,
                photo.created_at,
                [photo.id],
            )
            self.session.refresh(photo)
        return photo

    def upload_citizen(self, case: Case, item: PhotoUpload, by: Principal) -> Photo:
        """Store the photo of a citizen's report on ``case``, just reported by ``by``.

        The report route stands for the permission: it is open to anonymous callers only when
        the city accepts public reports. The step is ``report``, the stage ``before``."""
        self._reported_position(item)
        return self._store(
            PhotoUpload(**{**item.__dict__, "step": "report"}), "before", by, (case.id, None, None)
        )

    def upload_inspection(
        self, round_id: int, grid: str, item: PhotoUpload, by: Principal
    ) -> Photo:
        """Store a photo of grid ``grid`` taken by its scorer in the open inspection round
        ``round_id`` (交叉考核): ``assessment.score`` and an assignment to that grid."""
        stage = item.stage or "during"
        if stage not in STAGES:
            raise InvalidInput(
                f"unknown stage {stage!r}; use one of {', '.join(STAGES)}", field="stage"
            )
        self._reported_position(item)
        by.require("assessment.score")
        r = self.session.get(InspectionRound, round_id)
        if r is None or r.city != self.city:
            raise NotFound(f"no inspection round {round_id}", field="round_id")
        assigned = by.kind == "user" and self.session.scalar(
            select(RoundAssignment.id).where(
                RoundAssignment.city == self.city,
                RoundAssignment.round_id == round_id,
                RoundAssignment.grid_code == grid,
                RoundAssignment.scorer_id == by.id,
            )
        )
        if not assigned:
            raise Forbidden(
                f"{by.label} is not assigned to score grid {grid} in round {round_id}",
                field="grid",
            )
        if r.state != "open":
            raise InvalidInput(
                f"round {round_id} is {r.state}: photos are taken only while it is open",
                field="round_id",
            )
        return self._store(
            PhotoUpload(**{**item.__dict__, "step": "inspection"}), stage, by, (None, r.id, grid)
        )

    def _store(
        self,
        item: PhotoUpload,
        stage: str,
        by: Principal,
        subject: tuple[int | None, int | None, str | None],
    ) -> Photo:
        """Read the file, write its row (with the reuse flags) and stage its files."""
        reported = self._reported_position(item)
        t = now()
        media = self._read(item.data, t)
        case_id, round_id, grid = subject
        photo = Photo(
            city=self.city,
            case_id=case_id,
            round_id=round_id,
            grid_code=grid,
            step=item.step,
            stage=stage,
            kind=media.kind,
            mime=media.mime,
            bytes=len(media.data),
            sha256=media.sha256,
            phash=media.phash,
            width=media.width,
            height=media.height,
            uploader=by.label,
            uploader_user_id=by.id if by.kind == "user" else None,
            uploader_key_id=by.id if by.kind == "key" else None,
            created_at=t,
            taken_at=media.taken_at,
            exif_geom=_point(media.exif_lon, media.exif_lat),
            reported_geom=_point(*reported) if reported else None,
            reported_accuracy_m=item.accuracy_m,
            flags=list(media.flags),
        )
        reuse = find_reuse(
            self.session,
            self.city,
            subject,
            media.sha256,
            media.phash,
            self.settings.photos.reuse_distance,
        )
        if reuse is not None:
            photo.flags = [*photo.flags, reuse[0]]
            photo.reuse_of = reuse[1]
        self.session.add(photo)
        self.session.flush()
        self._stage_files(media)
        return photo

    def _reported_position(self, item: PhotoUpload) -> tuple[float, float] | None:
        if item.lon is None and item.lat is None:
            return None
        if item.lon is None or item.lat is None:
            missing = "lon" if item.lon is None else "lat"
            raise InvalidInput("send both lon and lat, or neither", field=missing)
        if item.accuracy_m is not None and not 0 <= item.accuracy_m <= 10_000:
            raise InvalidInput("accuracy_m must be 0..10000 metres", field="accuracy_m")
        return to_wgs84_point(item.lon, item.lat, item.datum)

    def _read(self, data: bytes, t: datetime) -> Media:
        p = self.settings.photos
        return read_media(
            data,
            max_mb=p.max_mb,
            video_max_mb=p.video_max_mb,
            max_pixels=p.max_pixels,
            thumbnail_px=p.thumbnail_px,
            tz=self.settings.grids.timezone,
            now=t,
        )

    def _stage_files(self, media: Media) -> None:
        """Stage the photo's files now; they appear when the session commits."""
        contents = {"orig": media.data, "display.jpg": media.display, "thumb.jpg": media.thumbnail}
        for variant, data in contents.items():
            if not data:
                continue
            key = file_key(media.sha256, variant)
            _pending(self.session).append((self.store, key, self.store.stage(key, data)))

    # -- reads -----------------------------------------------------------------------------
    def _case(self, case_id: int, by: Principal) -> Case:
        case = self.session.get(Case, case_id)
        if case is None or case.city != self.city or not sees_case(by, case):
            raise NotFound(f"no case {case_id}", field="case_id")
        return case

    def for_case(self, case_id: int, by: Principal) -> list[Photo]:
        """The photos of a case in ``by``'s scope, oldest first (retained ones only)."""
        self._case(case_id, by)
        return list(
            self.session.scalars(
                select(Photo)
                .where(Photo.case_id == case_id, Photo.deleted_at.is_(None))
                .order_by(Photo.id)
            )
        )

    def get(self, photo_id: int, by: Principal) -> Photo:
        """A photo whose case is in ``by``'s scope (``NotFound`` otherwise, or once deleted)."""
        photo = self.session.get(Photo, photo_id)
        if photo is None or photo.city != self.city or not self._sees(by, photo):
            raise NotFound(f"no photo {photo_id}", field="photo_id")
        if photo.deleted_at is not None:
            raise NotFound(
                f"photo {photo_id} was deleted by the retention rule "
                "(CITYGRID_PHOTO_RETENTION_DAYS)",
                field="photo_id",
            )
        return photo

    def _sees(self, by: Principal, photo: Photo) -> bool:
        """A case's photo: the case in scope. An inspection photo: its uploader, or an
        organiser of rounds (``assessment.rounds``) whose scope holds the grid."""
        if photo.case_id is not None:
            case = self.session.get(Case, photo.case_id)
            return case is not None and sees_case(by, case)
        if by.kind == "user" and by.id is not None and photo.uploader_user_id == by.id:
            return True
        return by.can("assessment.rounds") and by.covers_grid(photo.grid_code)

    def for_round(self, round_id: int, grid: str | None, by: Principal) -> list[Photo]:
        """The inspection photos of a round (of one grid) that ``by`` may see, oldest first."""
        query = select(Photo).where(
            Photo.city == self.city, Photo.round_id == round_id, Photo.deleted_at.is_(None)
        )
        if grid is not None:
            query = query.where(Photo.grid_code == grid)
        return [p for p in self.session.scalars(query.order_by(Photo.id)) if self._sees(by, p)]

    def content(self, photo_id: int, variant: str, by: Principal) -> tuple[bytes, str]:
        """The bytes and media type of a photo's ``image`` (EXIF-free), ``thumbnail`` or
        ``original`` (EXIF and all: ``people.read`` only; videos are served as uploaded,
        so only with ``people.read`` too)."""
        photo = self.get(photo_id, by)
        if variant == "thumbnail":
            return self.store.read(file_key(photo.sha256, "thumb.jpg")), "image/jpeg"
        if variant == "original" or photo.kind == "video":
            if not by.can(PEOPLE_READ):
                what = "videos" if photo.kind == "video" else "original photos (with EXIF)"
                raise Forbidden(
                    f"{by.label} may not see {what}: it needs the permission {PEOPLE_READ}; "
                    "the thumbnail and the EXIF-free image are open to the case's scope",
                    field="permission",
                    permission=PEOPLE_READ,
                )
            return self.store.read(file_key(photo.sha256, "orig")), photo.mime
        return self.store.read(file_key(photo.sha256, "display.jpg")), "image/jpeg"

    def flagged(
        self,
        by: Principal,
        since: datetime | None = None,
        flag: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[tuple[Photo, Case]]:
        """Flagged photos of cases in ``by``'s scope, newest first (keyset paging by id)."""
        query = (
            select(Photo, Case)
            .join(Case, (Case.city == Photo.city) & (Case.id == Photo.case_id))
            .where(
                Photo.city == self.city,
                Photo.deleted_at.is_(None),
                func.cardinality(Photo.flags) > 0,
            )
            .order_by(Photo.id.desc())
            .limit(limit)
        )
        condition = case_condition(by)
        if condition is not None:
            query = query.where(condition)
        if since is not None:
            query = query.where(Photo.created_at >= since)
        if flag is not None:
            query = query.where(any_(Photo.flags) == flag)
        if before_id is not None:
            query = query.where(Photo.id < before_id)
        return [(row[0], row[1]) for row in self.session.execute(query)]

    # -- checks and retention --------------------------------------------------------------
    def recheck(self) -> int:
        """Run the evidence check again over every feedback and verification photo (after a
        change of CITYGRID_PHOTO_EVIDENCE_DISTANCE_M, or a late dispatch record)."""
        return check_evidence(
            self.session, self.city, self.settings.photos.evidence_distance_m, now()
        )

    def sweep(self, at: datetime | None = None, limit: int | None = None) -> dict[str, int]:
        """Retention: photos older than ``CITYGRID_PHOTO_RETENTION_DAYS`` are marked deleted,
        their positions cleared and — once the marks commit — their files removed unless a
        retained photo shares them (at most ``limit`` photos, oldest ids first, when given).
        Nothing happens with retention off (0). Files staged more than
        ``STAGING_GRACE`` ago and never committed (a process died mid-upload) go either way."""
        # file and object times are the wall clock's, not the service's clock
        staged = self.store.clear_staging(datetime.now(UTC) - STAGING_GRACE)
        days = self.settings.photos.retention_days
        if days <= 0:
            return {"deleted": 0, "files": 0, "staged": staged}
        cutoff = (at or now()) - timedelta(days=days)
        old = list(
            self.session.scalars(
                select(Photo)
                .where(
                    Photo.city == self.city,
                    Photo.created_at < cutoff,
                    Photo.deleted_at.is_(None),
                )
                .order_by(Photo.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        t = now()
        shas = set()
        for photo in old:
            photo.deleted_at = t
            photo.exif_geom = None
            photo.reported_geom = None
            shas.add(photo.sha256)
        self.session.flush()
        kept = set(
            self.session.scalars(
                select(Photo.sha256).where(Photo.sha256.in_(shas), Photo.deleted_at.is_(None))
            )
        )
        gone = [file_key(s, v) for s in shas - kept for v in VARIANTS]
        _pending_deletes(self.session).extend((self.store, k) for k in gone)
        return {"deleted": len(old), "files": len(gone), "staged": staged}


def sweep_photos(
    session: Session, settings: AppSettings, at: datetime, limit: int = SWEEP_BATCH
) -> int:
    """The retention sweep as one of the background sweeps (the server's worker and
    ``citygrid deliver``): at most ``limit`` photos a call, so a first run over a long history
    never holds a long transaction (the next round takes the rest). Returns how many photos
    were marked deleted; the caller commits, and the files go once it has."""
    return PhotoService(session, settings).sweep(at, limit)["deleted"]


def _point(lon: float | None, lat: float | None) -> Any:
    if lon is None or lat is None:
        return None
    return from_shape(Point(lon, lat), srid=4326)


# -- files follow the transaction ----------------------------------------------------------
_PENDING = "citygrid_photo_files"
_DELETES = "citygrid_photo_deletes"


def _pending(session: Session) -> list[tuple[PhotoStore, str, str]]:
    _listen(session)
    return session.info.setdefault(_PENDING, [])


def _pending_deletes(session: Session) -> list[tuple[PhotoStore, str]]:
    _listen(session)
    return session.info.setdefault(_DELETES, [])


def _listen(session: Session) -> None:
    if not session.info.get("citygrid_photo_listening"):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_transaction_end", _after_end)
        session.info["citygrid_photo_listening"] = True


def _after_commit(session: Session) -> None:
    """The rows are committed: staged files become visible, deleted photos' files go."""
    for store, key, token in session.info.pop(_PENDING, []):
        store.promote(key, token)
    for store, key in session.info.pop(_DELETES, []):
        store.delete(key)


def _after_end(session: Session, transaction: Any) -> None:
    """A transaction ended without a commit (rollback, close): staged files are discarded."""
    if transaction.parent is not None:
        return  # a nested savepoint: the outer transaction decides
    for store, _key, token in session.info.pop(_PENDING, []):
        store.discard(token)
    session.info.pop(_DELETES, None)
