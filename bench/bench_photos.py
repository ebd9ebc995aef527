"""Photo evidence: upload throughput and thumbnail time for N photos, and the evidence check
over many photo rows in one statement against a per-photo loop, in the same run.

Uploads go through ``PhotoService.upload`` (sniff, EXIF, perceptual hash, EXIF-free copy,
thumbnail, reuse lookup, evidence check, staged files promoted on commit), one transaction
per photo, against a baseline of hashing and writing the same bytes alone. The evidence check
runs over ``--rows`` photo rows of ``--rows / 5`` dispatched cases (positions near and far,
times before and after dispatch) in one ``UPDATE … FROM`` (``check_evidence``), against a
loop that reads each photo, its case and its dispatch, measures with pyproj and writes the
flags back (timed on ``--loop-sample`` photos and extrapolated; its flags must equal the
set-based ones).

Defaults are small; the issue's size is ``--photos 100 --mb 4 --rows 100000``.

Run: ``python bench/bench_photos.py [--photos 10] [--mb 1] [--rows 10000]``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from common import machine_line, scratch_database
from PIL import Image
from pyproj import Geod
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.accounts.principal import SYSTEM
from service.photos.evidence import EVIDENCE_FLAGS, check_evidence
from service.photos.photos import PhotoService, PhotoUpload
from service.settings import AppSettings, PhotoSettings

CITY = "410100"
LON0, LAT0 = 113.65, 34.75
GEOD = Geod(ellps="WGS84")


def _photo_bytes(mb: float, count: int) -> list[bytes]:
    """``count`` distinct JPEGs of about ``mb`` MB each (a 4:3 noisy gradient, like a phone
    photo's entropy), differing in one corner block."""
    pixels = max(mb, 0.05) * 2.2e6  # ~0.46 byte per pixel at quality 90 for this content
    w = int((pixels * 4 / 3) ** 0.5)
    h = int(w * 3 / 4)
    rng = np.random.default_rng(0)
    base = np.linspace(0, 200, w, dtype=np.float32)[None, :, None] + np.zeros((h, 1, 3))
    base = np.clip(base + rng.normal(0, 18, (h, w, 3)), 0, 255).astype(np.uint8)
    out = []
    for i in range(count):
        base[:8, :8] = i % 256
        base[8:16, :8] = i // 256
        buf = io.BytesIO()
        Image.fromarray(base).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _cases(session: Session, n: int, dispatched_at: datetime) -> None:
    """``n`` dispatched cases around (LON0, LAT0), each with a dispatch event."""
    session.execute(
        text(
            "INSERT INTO cases (city, category_code, source, status, reported_at, updated_at,"
            " lon, lat)"
            " SELECT :city, '0102', 'patrol', 'dispatched', :t - interval '1 hour', :t,"
            " :lon + (i % 200) * 0.0005, :lat + (i / 200) * 0.0005"
            " FROM generate_series(0, :n - 1) i"
        ),
        {"city": CITY, "t": dispatched_at, "lon": LON0, "lat": LAT0, "n": n},
    )
    session.execute(
        text(
            "INSERT INTO case_events (city, case_id, action, from_status, to_status, actor, at)"
            " SELECT city, id, 'dispatch', 'registered', 'dispatched', 'bench', :t FROM cases"
        ),
        {"t": dispatched_at},
    )


def _photo_rows(session: Session, n: int, dispatched_at: datetime) -> None:
    """``n`` feedback photos over the cases: a quarter taken before dispatch, positions
    0–300 m from their case (two thirds beyond 100 m), a tenth without a position."""
    session.execute(
        text(
            """
            INSERT INTO photos (city, case_id, step, stage, kind, mime, bytes, sha256,
                                uploader, created_at, taken_at, exif_geom)
            SELECT :city, c.id, 'feedback', 'after', 'image', 'image/jpeg', 1000,
                   md5(i::text) || md5((i + 1)::text), 'bench',
                   :t + interval '2 hours',
                   :t + CASE WHEN i % 4 = 0 THEN interval '-1 hour' ELSE interval '1 hour' END,
                   CASE WHEN i % 10 = 0 THEN NULL ELSE
                     ST_Project(c.geom::geography, (i * 37 % 300)::float, radians(i % 360))
                       ::geometry END
            FROM generate_series(0, :n - 1) i
            JOIN cases c ON c.id = (SELECT min(id) FROM cases) + i % (SELECT count(*) FROM cases)
            """
        ),
        {"city": CITY, "t": dispatched_at, "n": n},
    )


def _loop_check(session: Session, ids: list[int], max_m: float) -> dict[int, list[str]]:
    """The per-photo baseline: three round trips and a pyproj distance per photo."""
    found: dict[int, list[str]] = {}
    for pid in ids:
        p = session.execute(
            text(
                "SELECT case_id, created_at, COALESCE(taken_at, created_at) AS at,"
                " ST_X(exif_geom) AS x, ST_Y(exif_geom) AS y FROM photos WHERE id = :id"
            ),
            {"id": pid},
        ).one()
        c = session.execute(text("SELECT lon, lat FROM cases WHERE id = :id"), {"id": p.case_id})
        lon, lat = c.one()
        dispatched = session.scalar(
            text(
                "SELECT max(at) FROM case_events WHERE case_id = :id AND action = 'dispatch'"
                " AND at <= :t"
            ),
            {"id": p.case_id, "t": p.created_at},
        )
        flags = []
        if dispatched is None:
            flags.append("not_dispatched")
        elif p.at < dispatched:
            flags.append("taken_before_dispatch")
        if p.x is None:
            flags.append("no_position")
            distance = None
        else:
            distance = GEOD.inv(p.x, p.y, lon, lat)[2]
            if distance > max_m:
                flags.append("too_far")
        session.execute(
            text(
                "UPDATE photos SET flags = :f, distance_m = :d, checked_at = now() WHERE id = :id"
            ),
            {"f": flags, "d": distance, "id": pid},
        )
        found[pid] = flags
    return found


def main(argv: list[str] | None = None) -> int:
    """Upload, thumbnail and evidence-check benchmarks; print figures beside baselines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10, help="photos to upload")
    parser.add_argument("--mb", type=float, default=1.0, help="size of each photo (MB)")
    parser.add_argument("--rows", type=int, default=10_000, help="photo rows to check")
    parser.add_argument("--loop-sample", type=int, default=1_000, help="photos the loop checks")
    opts = parser.parse_args(argv)
    print(machine_line())
    with scratch_database() as (engine, url), tempfile.TemporaryDirectory() as tmp:
        os.environ["CITYGRID_DATABASE_URL"] = url
        base = AppSettings()
        settings = replace(
            base,
            grids=base.grids.model_copy(update={"city": CITY}),
            photos=PhotoSettings(_env_file=None, dir=Path(tmp) / "photos", max_mb=opts.mb * 2 + 1),  # type: ignore[call-arg]
        )
        dispatched_at = datetime.now(UTC) - timedelta(days=1)
        with Session(engine) as session:
            _cases(session, max(opts.rows // 5, 1), dispatched_at)
            session.commit()
            case_id = session.scalar(text("SELECT min(id) FROM cases"))
        assert case_id is not None

        # -- uploads -------------------------------------------------------------------------
        photos = _photo_bytes(opts.mb, opts.photos)
        total_mb = sum(map(len, photos)) / 1e6
        t0 = time.perf_counter()
        for i, data in enumerate(photos):
            with Session(engine) as session:
                PhotoService(session, settings).upload(
                    case_id,
                    PhotoUpload(data, "feedback", lon=LON0 + 1e-5 * i, lat=LAT0),
                    SYSTEM,
                )
                session.commit()
        upload_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for data in photos:
            img = Image.open(io.BytesIO(data))
            img.load()
            img.convert("RGB").thumbnail((settings.photos.thumbnail_px,) * 2)
        thumb_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for data in photos:  # baseline: hash and write the bytes, nothing else
            path = Path(tmp) / "raw" / hashlib.sha256(data).hexdigest()
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
        raw_s = time.perf_counter() - t0
        n = len(photos)
        print(f"\nuploads: {n} photos of {total_mb / max(n, 1):.2f} MB ({total_mb:.1f} MB)")
        print(
            f"  PhotoService.upload + commit: {upload_s:.2f} s, {n / upload_s:.1f} photos/s, "
            f"{total_mb / upload_s:.1f} MB/s, {upload_s / n * 1000:.0f} ms per photo"
        )
        print(f"  of which decode + thumbnail alone: {thumb_s / n * 1000:.0f} ms per photo")
        print(f"  baseline (sha256 + write the bytes): {raw_s / n * 1000:.1f} ms per photo")

        # -- evidence check ------------------------------------------------------------------
        with Session(engine) as session:
            session.execute(text("DELETE FROM photos"))
            _photo_rows(session, opts.rows, dispatched_at)
            session.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE photos"))
            conn.execute(text("VACUUM ANALYZE case_events"))
        max_m = settings.photos.evidence_distance_m
        with Session(engine) as session:
            t0 = time.perf_counter()
            checked = check_evidence(session, CITY, max_m, datetime.now(UTC))
            set_s = time.perf_counter() - t0
            session.commit()
            ids = list(
                session.scalars(
                    text("SELECT id FROM photos ORDER BY id LIMIT :n"), {"n": opts.loop_sample}
                )
            )
            expected = {
                r.id: [f for f in r.flags if f in EVIDENCE_FLAGS]
                for r in session.execute(
                    text("SELECT id, flags FROM photos WHERE id = ANY(:ids)"), {"ids": ids}
                )
            }
            t0 = time.perf_counter()
            looped = _loop_check(session, ids, max_m)
            loop_s = time.perf_counter() - t0
            session.rollback()
            counts = dict(
                session.execute(
                    text("SELECT f, count(*) FROM photos, unnest(flags) f GROUP BY f ORDER BY f")
                ).all()
            )
        agree = all(sorted(looped[i]) == sorted(expected[i]) for i in ids)
        per_photo = loop_s / max(len(ids), 1)
        print(f"\nevidence check: {checked:,} feedback photos of {max(opts.rows // 5, 1):,} cases")
        print(f"  one statement (check_evidence): {set_s:.2f} s, {checked / set_s:,.0f} photos/s")
        print(
            f"  per-photo loop (baseline): {per_photo * 1000:.2f} ms per photo on {len(ids):,}; "
            f"{per_photo * checked:.1f} s extrapolated to {checked:,} "
            f"({per_photo * checked / set_s:.0f}× slower); flags agree: {agree}"
        )
        print(f"  flags: {counts}")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
