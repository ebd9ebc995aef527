"""Photo evidence: upload to a case, content sniffed (not named), EXIF read and stripped from
what is served, the evidence check (after dispatch, near the case) measured against pyproj,
reuse on another case, scope and privacy, nothing half-stored, retention, HEIC.

Every test runs twice: files in the folder, and in an S3-compatible bucket on a real HTTP
server (moto's server mode, see conftest.py)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from service.accounts.principal import SYSTEM
from service.db.models import Photo
from service.errors import NotFound
from service.grids.registry import Registry
from service.photos.evidence import flagged_counts
from service.photos.photos import PhotoService, PhotoUpload, store_for
from service.photos.store import file_key
from service.settings import AppSettings, PhotoSettings
from tests.helpers.accounts import admin_client, headers_of
from tests.helpers.city import COMM_A, COMM_B, point_lonlat
from tests.helpers.photos import (
    bomb_png,
    distance_m,
    exif_of,
    heic,
    jpeg,
    mp4,
    offset_point,
    picture,
)
from tests.helpers.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server, everything_stored
from tests.helpers.scope import act, report_at

CST = ZoneInfo("Asia/Shanghai")
SPOT_A = point_lonlat(50, 150)  # in community A's first unit grid
SPOT_B = point_lonlat(750, 150)  # in community B


@pytest.fixture(params=["folder", "s3"])
def photo_settings(
    request: pytest.FixtureRequest, settings: AppSettings, tmp_path: Path
) -> AppSettings:
    """The photo settings of one store: the folder, or a fresh bucket on the S3 server."""
    where: dict[str, object] = {"dir": tmp_path / "photos"}
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        where |= {
            "s3_bucket": server.new_bucket(),
            "s3_endpoint_url": server.endpoint_url,
            "s3_region": REGION,
            "s3_prefix": "city/photos",  # the store adds the final "/"
            "s3_addressing_style": "path",
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
        }
    return replace(
        settings,
        photos=PhotoSettings(
            _env_file=None,  # type: ignore[call-arg]
            max_mb=1,
            video_max_mb=2,
            max_pixels=4_000_000,
            retention_days=30,
            **where,  # type: ignore[arg-type]
        ),
    )


@pytest.fixture
def client(
    case_city: Registry,
    photo_settings: AppSettings,
    sessions: sessionmaker[Session],
    session: Session,
) -> Iterator[TestClient]:
    with admin_client(photo_settings, sessions, session) as c:
        yield c


def dispatched_case(client: TestClient, point: tuple[float, float] = SPOT_A) -> int:
    case_id = report_at(client, point)["id"]
    assert act(client, case_id, "register").status_code == 200
    assert act(client, case_id, "dispatch", department="环卫所").status_code == 200
    return case_id


def upload(
    client: TestClient,
    case_id: int,
    data: bytes,
    step: str = "feedback",
    name: str = "photo.jpg",
    headers: dict[str, str] | None = None,
    **form: object,
):
    return client.post(
        f"/api/cases/{case_id}/photos",
        files={"file": (name, data, "image/jpeg")},
        data={"step": step, **{k: str(v) for k, v in form.items()}},
        headers=headers,
    )


def soon() -> datetime:
    return datetime.now(CST) + timedelta(minutes=1)


# -- the evidence check ----------------------------------------------------------------------


def test_feedback_photo_after_dispatch_near_the_case_passes_and_is_served_without_exif(
    client: TestClient, photo_settings: AppSettings
) -> None:
    case_id = dispatched_case(client)
    place = offset_point(*SPOT_A, 40.0, azimuth=60)
    r = upload(client, case_id, jpeg(1, taken=soon(), gps=place))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["flags"] == [] and body["evidence_ok"]
    assert body["kind"] == "image" and body["mime"] == "image/jpeg"
    assert (body["width"], body["height"]) == (320, 240)
    # the distance PostGIS measured, against pyproj's own (EXIF degrees/minutes/seconds kept
    # to 1/10000 s: well under a metre)
    assert body["distance_m"] == pytest.approx(distance_m(place, SPOT_A), abs=0.5)
    assert body["exif_position"]["coordinates"] == pytest.approx(list(place), abs=1e-6)

    image = client.get(body["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert exif_of(image.content) == {}  # no time, no position
    thumb = client.get(body["thumbnail_url"])
    assert thumb.status_code == 200 and exif_of(thumb.content) == {}
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= photo_settings.photos.thumbnail_px
    original = client.get(body["image_url"], params={"original": "true"})
    assert original.status_code == 200
    assert 0x8825 in Image.open(io.BytesIO(original.content)).getexif()  # admin: people.read
    listed = client.get(f"/api/cases/{case_id}/photos").json()
    assert [p["id"] for p in listed["items"]] == [body["id"]] and listed["flags"] == []


def test_feedback_photo_far_from_the_case_is_flagged_not_refused(client: TestClient) -> None:
    case_id = dispatched_case(client)
    place = offset_point(*SPOT_A, 250.0, azimuth=200)
    r = upload(client, case_id, jpeg(2, taken=soon(), gps=place))
    assert r.status_code == 201, r.text
    assert r.json()["flags"] == ["too_far"] and not r.json()["evidence_ok"]
    assert r.json()["distance_m"] == pytest.approx(distance_m(place, SPOT_A), abs=0.5)
    assert client.get(f"/api/cases/{case_id}/photos").json()["flags"] == ["too_far"]
    flagged = client.get("/api/photos/flagged").json()["items"]
    assert [(p["id"], p["case"]["id"]) for p in flagged] == [(r.json()["id"], case_id)]


def test_reported_position_counts_when_the_photo_has_no_exif_position(client: TestClient) -> None:
    case_id = dispatched_case(client)
    near = offset_point(*SPOT_A, 70.0, azimuth=0)
    r = upload(client, case_id, jpeg(3), lon=near[0], lat=near[1], accuracy_m=8)
    assert r.status_code == 201, r.text
    assert r.json()["flags"] == []
    assert r.json()["distance_m"] == pytest.approx(distance_m(near, SPOT_A), abs=0.5)
    far = offset_point(*SPOT_A, 130.0, azimuth=0)
    r = upload(client, case_id, jpeg(4), "verification", lon=far[0], lat=far[1])
    assert r.json()["flags"] == ["too_far"]


def test_photo_taken_before_dispatch_or_of_an_undispatched_case_is_flagged(
    client: TestClient,
) -> None:
    case_id = dispatched_case(client)
    early = datetime.now(CST) - timedelta(hours=3)
    r = upload(client, case_id, jpeg(5, taken=early, gps=SPOT_A))
    assert r.json()["flags"] == ["taken_before_dispatch"]
    undispatched = report_at(client, SPOT_A, category="0103")["id"]
    r = upload(client, undispatched, jpeg(6, taken=soon(), gps=SPOT_A))
    assert r.json()["flags"] == ["not_dispatched"]
    r = upload(client, case_id, jpeg(7, taken=soon()))
    assert r.json()["flags"] == ["no_position"]
    # report photos are not evidence of a fix: no check
    r = upload(client, undispatched, jpeg(8, taken=early), "report")
    assert r.json()["flags"] == [] and r.json()["stage"] == "before"


def test_photo_used_on_another_case_is_flagged_as_reused(client: TestClient) -> None:
    first_case = dispatched_case(client)
    other_case = dispatched_case(client, SPOT_B)
    data = jpeg(9, taken=soon(), gps=SPOT_A)
    first = upload(client, first_case, data).json()
    again = upload(client, first_case, data).json()  # the same case: no reuse
    assert "reused" not in again["flags"]
    same = upload(client, other_case, data, lon=SPOT_B[0], lat=SPOT_B[1]).json()
    assert "reused" in same["flags"] and same["reuse_of"] == first["id"]
    # the same picture re-encoded: other bytes, a perceptual hash within the threshold
    picture = Image.open(io.BytesIO(data))
    similar = upload(client, other_case, jpeg(image=picture, quality=60)).json()
    assert similar["sha256"] != first["sha256"]
    assert "reused_similar" in similar["flags"] and similar["reuse_of"] == first["id"]
    different = upload(client, other_case, jpeg(10, taken=soon(), gps=SPOT_B)).json()
    assert different["flags"] == []


def test_impossible_exif_is_ignored_and_flagged(client: TestClient) -> None:
    case_id = dispatched_case(client)
    bad_gps = {1: "N", 2: (95.0, 0.0, 0.0), 3: "E", 4: (113.0, 75.0, 0.0)}
    r = upload(client, case_id, jpeg(11, raw_gps=bad_gps), lon=SPOT_A[0], lat=SPOT_A[1])
    assert r.status_code == 201, r.text
    assert r.json()["has_exif_position"] is False
    assert r.json()["flags"] == ["exif_position_invalid"]  # the reported position was near
    r = upload(client, case_id, jpeg(12, taken=datetime(1990, 1, 1, tzinfo=CST), gps=SPOT_A))
    assert r.json()["taken_at"] is None and "exif_time_invalid" in r.json()["flags"]


def test_the_case_shows_the_doubtful_flags_of_its_photos_kept(
    client: TestClient, photo_settings: AppSettings, sessions: sessionmaker[Session]
) -> None:
    """``evidence_flags`` on the case (one, an action's answer, the ledger): time, place and
    reuse flags of its photos not deleted; EXIF notes are not doubt; nothing blocks."""
    case_id = dispatched_case(client)
    clean_case = dispatched_case(client, SPOT_B)
    assert client.get(f"/api/cases/{case_id}").json()["evidence_flags"] == []
    bad_gps = {1: "N", 2: (95.0, 0.0, 0.0), 3: "E", 4: (113.0, 75.0, 0.0)}
    upload(client, case_id, jpeg(30, raw_gps=bad_gps, taken=soon()), lon=SPOT_A[0], lat=SPOT_A[1])
    far = upload(client, case_id, jpeg(31, taken=soon(), gps=offset_point(*SPOT_A, 300.0))).json()
    upload(client, case_id, jpeg(32, taken=soon()))  # no position at all
    upload(client, clean_case, jpeg(33, taken=soon(), gps=SPOT_B))
    assert client.get(f"/api/cases/{case_id}/photos").json()["flags"] == [
        "exif_position_invalid",
        "no_position",
        "too_far",
    ]
    assert client.get(f"/api/cases/{case_id}").json()["evidence_flags"] == [
        "no_position",
        "too_far",
    ]
    assert client.get(f"/api/cases/{clean_case}").json()["evidence_flags"] == []
    ledger = {c["id"]: c["evidence_flags"] for c in client.get("/api/cases").json()["items"]}
    assert ledger[case_id] == ["no_position", "too_far"] and ledger[clean_case] == []
    # the flags never block the next step, and its answer shows them too
    fed_back = act(client, case_id, "feedback", note="已清理")
    assert fed_back.status_code == 200, fed_back.text
    assert fed_back.json()["evidence_flags"] == ["no_position", "too_far"]
    # a photo deleted by retention is no evidence any more
    with sessions() as s:
        s.execute(
            text("UPDATE photos SET created_at = now() - interval '40 days' WHERE id = :id"),
            {"id": far["id"]},
        )
        PhotoService(s, photo_settings).sweep()
        s.commit()
    assert client.get(f"/api/cases/{case_id}").json()["evidence_flags"] == ["no_position"]


# -- bad input: a 4xx naming the field, nothing stored -----------------------------------------


def _noise_jpeg(side: int) -> bytes:
    rng = np.random.default_rng(0)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
        out, "JPEG", quality=98
    )
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "form", "status", "field"),
    [
        (b"%PDF-1.4 not a photo at all" * 10, {}, 422, "file"),
        (b"", {}, 422, "file"),
        ("noise", {}, 413, "file"),
        ("bomb", {}, 422, "file"),
        ("ok", {"step": "cleanup"}, 422, "step"),
        ("ok", {"stage": "later"}, 422, "stage"),
        ("ok", {"lon": 113.6}, 422, "lat"),
        ("ok", {"lon": 113.6, "lat": 95}, 422, "lat"),
        ("ok", {"lon": 113.6, "lat": 34.7, "datum": "utm"}, 422, "datum"),
        (mp4(b"heic"), {}, 422, "file"),  # a HEIC's header and nothing else
        ("heic_bomb", {}, 422, "file"),
        (mp4(b"avif"), {}, 422, "file"),
        (mp4(size=3_000_000), {}, 413, "file"),
    ],
)
def test_bad_uploads_are_refused_naming_the_field_and_store_nothing(
    client: TestClient,
    photo_settings: AppSettings,
    session: Session,
    data: bytes | str,
    form: dict[str, object],
    status: int,
    field: str,
) -> None:
    case_id = dispatched_case(client)
    content = {
        "noise": lambda: _noise_jpeg(1000),
        "bomb": lambda: bomb_png(3000),
        # 4.4 million pixels of one colour: a few kB, over the 4 million allowed
        "heic_bomb": lambda: heic(image=Image.new("RGB", (2100, 2100), "red")),
    }
    body = content.get(data, lambda: jpeg(13))() if isinstance(data, str) else data
    form = {"step": "feedback"} | form
    r = upload(client, case_id, body, **form)  # type: ignore[arg-type]
    assert r.status_code == status, r.text
    assert r.json()["field"] == field, r.text
    assert session.scalar(select(func.count()).select_from(Photo)) == 0
    assert everything_stored(photo_settings) == []


def test_a_video_is_stored_with_a_placeholder_and_served_only_with_people_read(
    client: TestClient,
) -> None:
    case_id = dispatched_case(client)
    r = upload(client, case_id, mp4(), name="clip.mp4", lon=SPOT_A[0], lat=SPOT_A[1])
    assert r.status_code == 201, r.text
    assert (r.json()["kind"], r.json()["mime"]) == ("video", "video/mp4")
    thumb = client.get(r.json()["thumbnail_url"])
    assert Image.open(io.BytesIO(thumb.content)).format == "JPEG"
    assert client.get(r.json()["image_url"]).content == mp4()  # the admin holds people.read
    staff = headers_of(client, "department", department="环卫所")
    refused = client.get(r.json()["image_url"], headers=staff)
    assert refused.status_code == 403 and "people.read" in refused.text


# -- scope and privacy -----------------------------------------------------------------------


def test_photos_are_only_for_the_cases_scope_and_positions_only_for_people_read(
    client: TestClient,
) -> None:
    case_id = dispatched_case(client)
    photo = upload(client, case_id, jpeg(14, taken=soon(), gps=SPOT_A)).json()
    outsider = headers_of(client, "grid_worker", scope_grids=[COMM_B])
    refused = upload(client, case_id, jpeg(15), "verification", headers=outsider)
    assert refused.status_code == 404 and refused.json()["field"] == "case_id"
    for url in (f"/api/photos/{photo['id']}", photo["image_url"], photo["thumbnail_url"]):
        assert client.get(url, headers=outsider).status_code == 404
    assert client.get(f"/api/cases/{case_id}/photos", headers=outsider).status_code == 404

    insider = headers_of(client, "grid_worker", scope_grids=[COMM_A])
    verified = upload(
        client, case_id, jpeg(23, taken=soon(), gps=SPOT_A), "verification", headers=insider
    )
    assert verified.status_code == 201 and verified.json()["flags"] == [], verified.text
    # a grid worker verifies but does not feed back
    wrong_step = upload(client, case_id, jpeg(16), "feedback", headers=insider)
    assert wrong_step.status_code == 403 and "cases.feedback" in wrong_step.text
    seen = client.get(f"/api/photos/{photo['id']}", headers=insider).json()
    assert "exif_position" not in seen and "uploader" not in seen  # no people.read
    assert exif_of(client.get(photo["image_url"], headers=insider).content) == {}
    original = client.get(photo["image_url"], params={"original": "1"}, headers=insider)
    assert original.status_code == 403 and "people.read" in original.text


def test_flagged_list_keeps_to_the_reviewers_scope(
    client: TestClient, session: Session, photo_settings: AppSettings
) -> None:
    in_a = dispatched_case(client)
    in_b = dispatched_case(client, SPOT_B)
    far = offset_point(*SPOT_A, 500.0)
    a = upload(client, in_a, jpeg(17, taken=soon(), gps=far)).json()
    b = upload(client, in_b, jpeg(18, taken=soon(), gps=far)).json()
    reviewer_b = headers_of(client, "dispatcher", scope_grids=[COMM_B])
    listed = client.get("/api/photos/flagged", headers=reviewer_b).json()["items"]
    assert [p["id"] for p in listed] == [b["id"]]
    everyone = client.get("/api/photos/flagged", params={"flag": "too_far"}).json()["items"]
    assert [p["id"] for p in everyone] == [b["id"], a["id"]]
    worker = headers_of(client, "grid_worker")
    assert client.get("/api/photos/flagged", headers=worker).status_code == 403
    day = datetime.now(UTC) - timedelta(days=1)
    counts = flagged_counts(session, photo_settings.grids.city, day, day + timedelta(days=2))
    grids = {code[:12] for code in counts if code}
    assert grids == {COMM_A[:12], COMM_B[:12]}
    assert sum(c["cases"] for c in counts.values()) == 2


# -- nothing half-stored, and retention --------------------------------------------------------


def test_files_appear_only_when_the_row_commits(
    client: TestClient, photo_settings: AppSettings, sessions: sessionmaker[Session]
) -> None:
    case_id = dispatched_case(client)
    store = store_for(photo_settings)
    with sessions() as s:
        PhotoService(s, photo_settings).upload(case_id, PhotoUpload(jpeg(19), "feedback"), SYSTEM)
        assert list(store.keys()) == []  # staged, not visible
        s.rollback()
    assert everything_stored(photo_settings) == []  # staging discarded too
    with sessions() as s:
        photo = PhotoService(s, photo_settings).upload(
            case_id, PhotoUpload(jpeg(19), "feedback"), SYSTEM
        )
        s.commit()
    keys = sorted(file_key(photo.sha256, v) for v in ("orig", "display.jpg", "thumb.jpg"))
    assert sorted(store.keys()) == keys
    # where they are: the bucket under its prefix when one is set, else the folder
    prefix = "city/photos/" if photo_settings.photos.s3_bucket else ""
    assert everything_stored(photo_settings) == [prefix + k for k in keys]
    assert store.read(file_key(photo.sha256, "orig")) == jpeg(19)


def test_files_staged_by_an_upload_that_never_ended_are_cleared_once_stale(
    photo_settings: AppSettings, session: Session
) -> None:
    store = store_for(photo_settings)
    key = file_key("ab" * 32, "orig")
    store.stage(key, b"a process died before its commit")
    assert list(store.keys()) == [] and len(everything_stored(photo_settings)) == 1
    now = datetime.now(UTC)
    assert store.clear_staging(now - timedelta(hours=1)) == 0  # may still be committing
    assert len(everything_stored(photo_settings)) == 1
    assert store.clear_staging(now + timedelta(minutes=1)) == 1
    assert everything_stored(photo_settings) == []
    with pytest.raises(NotFound) as missing:  # never promoted: not in the store
        store.read(key)
    assert missing.value.field == "file"


def test_retention_sweep_deletes_old_photos_files_but_keeps_shared_ones(
    client: TestClient, photo_settings: AppSettings, sessions: sessionmaker[Session]
) -> None:
    case_id = dispatched_case(client)
    old = upload(client, case_id, jpeg(20), lon=SPOT_A[0], lat=SPOT_A[1]).json()
    shared = upload(client, case_id, jpeg(21)).json()
    recent_copy = upload(client, case_id, jpeg(21)).json()
    with sessions() as s:
        s.execute(
            text("UPDATE photos SET created_at = now() - interval '40 days' WHERE id = ANY(:ids)"),
            {"ids": [old["id"], shared["id"]]},
        )
        s.commit()
    with sessions() as s:
        assert PhotoService(s, photo_settings).sweep() == {
            "deleted": 2,
            "files": 3,
            "staged": 0,
        }
        s.commit()
    gone = client.get(f"/api/photos/{old['id']}")
    assert gone.status_code == 404 and "retention" in gone.json()["detail"]
    assert client.get(old["image_url"]).status_code == 404
    assert client.get(recent_copy["image_url"]).status_code == 200  # same bytes, kept
    with sessions() as s:
        row = s.get(Photo, old["id"])
        assert row is not None and row.reported_geom is None and row.deleted_at is not None


def test_a_gcj02_position_is_stored_in_wgs84(client: TestClient) -> None:
    import prcoords

    case_id = dispatched_case(client)
    near = offset_point(*SPOT_A, 60.0, azimuth=120)
    shifted = prcoords.wgs_gcj(prcoords.Coords(near[1], near[0]))
    r = upload(client, case_id, jpeg(22), lon=shifted.lon, lat=shifted.lat, datum="gcj02")
    assert r.status_code == 201, r.text
    # without the conversion the GCJ-02 offset (hundreds of metres) would make it too_far
    assert r.json()["flags"] == []
    assert r.json()["distance_m"] == pytest.approx(distance_m(near, SPOT_A), abs=1.0)
    # answered in the datum it was sent in; stored (and read back by default) in WGS 84
    gcj = r.json()["reported_position"]["coordinates"]
    assert distance_m((gcj[0], gcj[1]), (shifted.lon, shifted.lat)) < 1.0
    wgs = client.get(f"/api/photos/{r.json()['id']}").json()["reported_position"]["coordinates"]
    assert distance_m((wgs[0], wgs[1]), near) < 1.0


def test_png_with_transparency_and_a_rotated_jpeg_are_served_upright_as_jpeg(
    client: TestClient,
) -> None:
    case_id = dispatched_case(client)
    rgba = Image.new("RGBA", (200, 100), (255, 0, 0, 0))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    r = upload(client, case_id, buf.getvalue(), "report", name="photo.jpg")
    assert r.status_code == 201, r.text
    assert r.json()["mime"] == "image/png"  # the content decides, not the name
    served = Image.open(io.BytesIO(client.get(r.json()["image_url"]).content))
    assert served.format == "JPEG" and served.getpixel((10, 10)) == pytest.approx(
        (255, 255, 255), abs=3
    )  # transparency on white
    # a landscape picture the camera tagged "rotate 90°" (EXIF Orientation 6)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.new("RGB", (300, 200), "blue").save(out, "JPEG", exif=exif.tobytes())
    r = upload(client, case_id, out.getvalue(), "report")
    upright = Image.open(io.BytesIO(client.get(r.json()["image_url"]).content))
    assert upright.size == (200, 300) and exif_of(client.get(r.json()["image_url"]).content) == {}


# -- HEIC (iPhones' default) -----------------------------------------------------------------


def test_a_heic_photo_is_read_like_a_jpeg_and_served_as_an_exif_free_jpeg(
    client: TestClient, photo_settings: AppSettings
) -> None:
    case_id = dispatched_case(client)
    place = offset_point(*SPOT_A, 30.0, azimuth=10)
    sent = heic(40, size=(400, 300), taken=soon(), gps=place)
    assert sent[4:12] == b"ftypheic"
    r = upload(client, case_id, sent, name="IMG_0001.HEIC")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["kind"], body["mime"]) == ("image", "image/heic")
    assert (body["width"], body["height"]) == (400, 300)
    # its EXIF time and position were read: the evidence check passes on them
    assert body["flags"] == [] and body["evidence_ok"]
    assert body["exif_position"]["coordinates"] == pytest.approx(list(place), abs=1e-6)
    assert body["distance_m"] == pytest.approx(distance_m(place, SPOT_A), abs=0.5)

    image = client.get(body["image_url"])
    assert image.headers["content-type"] == "image/jpeg"
    served = Image.open(io.BytesIO(image.content))
    assert served.format == "JPEG" and served.size == (400, 300)
    assert exif_of(image.content) == {}
    # the same picture as the one sent, not just any JPEG (HEVC is lossy: compare loosely)
    diff = np.abs(np.asarray(served, dtype=int) - np.asarray(picture(40, (400, 300)), dtype=int))
    assert diff.mean() < 8
    thumb = client.get(body["thumbnail_url"])
    assert Image.open(io.BytesIO(thumb.content)).format == "JPEG" and exif_of(thumb.content) == {}
    assert max(Image.open(io.BytesIO(thumb.content)).size) == photo_settings.photos.thumbnail_px
    # the original as uploaded, EXIF and all, only with people.read
    original = client.get(body["image_url"], params={"original": "true"})
    assert original.content == sent and original.headers["content-type"] == "image/heic"
    staff = headers_of(client, "department", department="环卫所")
    refused = client.get(body["image_url"], params={"original": "true"}, headers=staff)
    assert refused.status_code == 403 and "people.read" in refused.text
    # the same picture again as a JPEG on another case is reuse (the pHash is the picture's)
    other = dispatched_case(client)
    again = upload(client, other, jpeg(image=picture(40, (400, 300)), quality=95)).json()
    assert "reused_similar" in again["flags"] and again["reuse_of"] == body["id"]
    # a portrait shot: HEIF stores the rotation as a transform, applied when decoding
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = heic(image=Image.new("RGB", (300, 200), "blue"), exif=exif)
    r = upload(client, case_id, rotated, "report")
    upright = client.get(r.json()["image_url"]).content
    assert Image.open(io.BytesIO(upright)).size == (200, 300) and exif_of(upright) == {}


# -- inspection rounds (交叉考核) --------------------------------------------------------------


def test_a_scorer_photographs_the_grid_it_scores_in_an_open_round(client: TestClient) -> None:
    from tests.helpers.city import unit_code

    grid = unit_code(COMM_B, 1)
    scorer = headers_of(client, "inspector", scope_grids=[COMM_A])
    me = client.get("/api/auth/me", headers=scorer).json()["login"]
    base = "/api/assessment/rounds"
    made = client.post(base, json={"period": "2026-11", "grids": [grid], "scorers": [me]})
    assert made.status_code == 201, made.text
    round_id = made.json()["id"]

    def send(headers: dict[str, str], data: bytes, **form: object):
        return client.post(
            f"{base}/{round_id}/photos",
            files={"file": ("p.jpg", data, "image/jpeg")},
            data={"grid": grid, **{k: str(v) for k, v in form.items()}},
            headers=headers,
        )

    draft = send(scorer, jpeg(30))
    assert draft.status_code == 422 and draft.json()["field"] == "round_id"
    assert client.post(f"{base}/{round_id}/open").status_code == 200
    picture = jpeg(30, taken=soon(), gps=SPOT_B)
    r = send(scorer, picture)
    assert r.status_code == 201, r.text
    photo = r.json()
    assert (photo["step"], photo["stage"], photo["grid_code"]) == ("inspection", "during", grid)
    assert photo["case_id"] is None and photo["flags"] == []
    other = headers_of(client, "inspector", scope_grids=[COMM_A])
    refused = send(other, jpeg(31))
    assert refused.status_code == 403 and refused.json()["field"] == "grid"
    # who sees it: its scorer and the organisers whose scope holds the grid
    assert client.get(f"/api/photos/{photo['id']}", headers=scorer).status_code == 200
    assert client.get(photo["thumbnail_url"], headers=scorer).status_code == 200
    assert client.get(f"/api/photos/{photo['id']}", headers=other).status_code == 404
    organiser_a = headers_of(client, "leader", scope_grids=[COMM_A])
    assert client.get(f"/api/photos/{photo['id']}", headers=organiser_a).status_code == 404
    listed = client.get(f"{base}/{round_id}/photos", params={"grid": grid}).json()["items"]
    assert [p["id"] for p in listed] == [photo["id"]]
    assert client.get(f"{base}/{round_id}/photos", headers=other).json()["items"] == []
    # the same picture sent as a case's evidence is reuse
    case_id = dispatched_case(client, SPOT_B)
    reused = upload(client, case_id, picture).json()
    assert "reused" in reused["flags"] and reused["reuse_of"] == photo["id"]


# -- the bucket's credentials --------------------------------------------------------------


def test_the_bucket_takes_its_credentials_from_the_standard_aws_variables(
    settings: AppSettings,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    bucket = s3_server.new_bucket()
    only_bucket = replace(
        settings,
        photos=PhotoSettings(
            _env_file=None,  # type: ignore[call-arg]
            dir=tmp_path / "photos",
            s3_bucket=bucket,
            s3_endpoint_url=s3_server.endpoint_url,
            s3_region=REGION,
        ),
    )
    store = store_for(only_bucket)
    key = file_key("cd" * 32, "thumb.jpg")
    store.promote(key, store.stage(key, b"thumbnail bytes"))
    assert store.read(key) == b"thumbnail bytes"
    assert s3_server.objects(bucket) == [key]  # no prefix set: keys at the bucket's root
    assert not (tmp_path / "photos").exists()  # the folder is not used
