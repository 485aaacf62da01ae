"""A segment leaves siyu: as a spreadsheet (masked by role, audited), and as ad-platform audience
files in each platform's exact format — Tencent Ads' hashed lines, Ocean Engine's protobuf lines,
checked with the protobuf runtime — holding only people with audience-upload consent, every
other member counted with the reason. Holdouts: stable, independent draws, exposed per person."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from typing import Any

from fastapi.testclient import TestClient
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from openpyxl import load_workbook

from siyu.accounts.contracts import Role
from siyu.rules.buckets import bucket_of
from siyu.segments.audiences import IDS_PER_LINE, _ocean_zip
from siyu.storage.session import Database
from tests.conftest import Actor, login, make_actor
from tests.test_segments_api import consent as given
from tests.test_tags_api import identify, profile_of


def consent(client: TestClient, a: Actor, kind: str, value: str, status: str, at: str) -> None:
    """A grant or withdrawal of the separate consent to audience upload."""
    given(client, a, value, status, at, kind=kind, channel="ads", purpose="audience_upload")


def dmp_data_class() -> Any:
    """``toutiao.dmp.DmpData`` built from its .proto as Ocean Engine publishes it."""
    proto = descriptor_pb2.FileDescriptorProto(name="dmp.proto", package="toutiao.dmp", syntax="proto2")
    item = proto.message_type.add(name="IdItem")
    field = descriptor_pb2.FieldDescriptorProto
    item.field.add(name="timestamp", number=1, type=field.TYPE_UINT32, label=field.LABEL_OPTIONAL)
    item.field.add(
        name="dataType",
        number=2,
        type=field.TYPE_ENUM,
        label=field.LABEL_REQUIRED,
        type_name=".toutiao.dmp.IdItem.DataType",
    )
    item.field.add(name="id", number=3, type=field.TYPE_STRING, label=field.LABEL_REQUIRED)
    item.field.add(name="tags", number=4, type=field.TYPE_STRING, label=field.LABEL_REPEATED)
    kinds = item.enum_type.add(name="DataType")
    for name, number in [
        ("IMEI", 0),
        ("IDFA", 1),
        ("UID", 2),
        ("IMEI_MD5", 4),
        ("IDFA_MD5", 5),
        ("MOBILE_HASH_SHA256", 6),
        ("OAID", 7),
        ("OAID_MD5", 8),
    ]:
        kinds.value.add(name=name, number=number)
    data = proto.message_type.add(name="DmpData")
    data.field.add(
        name="idList", number=1, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED, type_name=".toutiao.dmp.IdItem"
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("toutiao.dmp.DmpData"))


def unzip(content: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        (name,) = archive.namelist()
        return archive.read(name).decode().splitlines()


def test_audience_files_hold_only_consented_people_in_each_platforms_format(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    identify(client, a, "u1", {"phone": "13900000001", "name": "张三"})
    identify(client, a, "u2", {"phone": "13900000002"})
    identify(client, a, "u3", {"phone": "13900000003"})
    identify(client, a, "u4", {"email": "li@example.com"})
    identify(client, a, "u5", {"phone": "+12025550123"})
    consent(client, a, "phone", "13900000001", "granted", "2026-03-01T10:00:00+08:00")
    consent(client, a, "phone", "13900000003", "granted", "2026-03-01T10:00:00+08:00")
    consent(client, a, "phone", "13900000003", "withdrawn", "2026-04-01T10:00:00+08:00")
    consent(client, a, "email", "li@example.com", "granted", "2026-03-01T10:00:00+08:00")
    consent(client, a, "phone", "+12025550123", "granted", "2026-03-01T10:00:00+08:00")
    people = [profile_of(client, a, f"1390000000{i}") for i in (1, 2, 3)]
    people += [profile_of(client, a, "li@example.com"), profile_of(client, a, "+12025550123")]
    made = client.post(
        "/api/v1/segments", json={"name": "投放人群", "kind": "static", "profile_ids": people}, headers=a.bearer
    )
    assert made.status_code == 201, made.text
    seg = made.json()["id"]

    expected_excluded = {
        "no audience-upload consent": 2,
        "no identifier of this type": 1,
        "not a mainland China mobile number": 1,
    }
    query = {"platform": "tencent", "id_type": "HASH_MOBILE_PHONE"}
    report = client.get(f"/api/v1/segments/{seg}/audience/report", params=query, headers=a.bearer).json()
    assert (report["members"], report["included"], report["ids"]) == (5, 1, 1)
    assert report["excluded"] == expected_excluded
    assert report["members"] == report["included"] + sum(report["excluded"].values())

    tencent = client.get(f"/api/v1/segments/{seg}/audience", params=query, headers=a.bearer)
    assert tencent.status_code == 200 and tencent.headers["content-type"] == "application/zip"
    assert tencent.headers["x-audience-included"] == "1"
    # MD5 of the 11-digit number, no +86, lowercase hex.
    assert unzip(tencent.content) == [hashlib.md5(b"13900000001").hexdigest()]
    sha = client.get(
        f"/api/v1/segments/{seg}/audience", params={**query, "id_type": "SHA256_MOBILE_PHONE"}, headers=a.bearer
    )
    assert unzip(sha.content) == [hashlib.sha256(b"13900000001").hexdigest()]

    ocean = client.get(
        f"/api/v1/segments/{seg}/audience",
        params={"platform": "oceanengine", "id_type": "MOBILE_HASH_SHA256"},
        headers=a.bearer,
    )
    assert ocean.status_code == 200, ocean.text
    dmp = dmp_data_class()()
    (line,) = unzip(ocean.content)
    dmp.ParseFromString(base64.b64decode(line))
    assert [(i.dataType, i.id) for i in dmp.idList] == [(6, hashlib.sha256(b"13900000001").hexdigest())]

    refused = client.get(
        f"/api/v1/segments/{seg}/audience/report",
        params={"platform": "oceanengine", "id_type": "IMEI"},
        headers=a.bearer,
    )
    assert refused.status_code == 422 and "does not take IMEI" in refused.json()["message"]
    no_app = client.get(
        f"/api/v1/segments/{seg}/audience/report",
        params={"platform": "tencent", "id_type": "WX_OPENID"},
        headers=a.bearer,
    )
    assert no_app.status_code == 422 and no_app.json()["details"]["path"] == "app_id"
    audit = client.get("/api/v1/audit", params={"action": "segment.audience_export"}, headers=a.bearer).json()
    assert len(audit["items"]) == 3

    # Spreadsheets: whole for operators, masked for analysts; both audited.
    csv = client.get(f"/api/v1/segments/{seg}/export", params={"format": "csv"}, headers=a.bearer)
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "profile_id,姓名,手机号,邮箱,进入时间" and len(lines) == 6
    assert any("张三" in line and "+8613900000001" in line for line in lines)
    analyst = make_actor(db, "acme", role=Role.ANALYST)
    login(client, analyst.email)
    xlsx = client.get(f"/api/v1/segments/{seg}/export", params={"format": "xlsx"})
    assert xlsx.status_code == 200, xlsx.text
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert len(rows) == 6 and not any("张三" in str(r) or "13900000001" in str(r) for r in rows)
    assert any("139****0001" in str(r) for r in rows)
    assert client.get(f"/api/v1/segments/{seg}/audience", params=query).status_code == 403
    client.cookies.clear()
    exports = client.get("/api/v1/audit", params={"action": "segment.export"}, headers=a.bearer).json()["items"]
    assert sorted(e["details"]["masked"] for e in exports) == [False, True]


def test_ocean_engine_lines_hold_at_most_ten_thousand_ids() -> None:
    ids = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(2 * IDS_PER_LINE + 1)]
    lines = unzip(_ocean_zip("x", ids))
    dmp_class = dmp_data_class()
    decoded = []
    for line in lines:
        dmp = dmp_class()
        dmp.ParseFromString(base64.b64decode(line))
        decoded.append([i.id for i in dmp.idList])
    assert [len(d) for d in decoded] == [IDS_PER_LINE, IDS_PER_LINE, 1]
    assert [i for d in decoded for i in d] == ids


def test_holdouts_are_stable_independent_draws(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    people = [f"pf_{n:04d}" for n in range(400)]

    def held(holdout_id: str) -> set[str]:
        found = set()
        for start in range(0, len(people), 200):
            response = client.get(
                f"/api/v1/holdouts/{holdout_id}/check",
                params={"profile_id": people[start : start + 200]},
                headers=a.bearer,
            )
            assert response.status_code == 200, response.text
            found |= set(response.json()["held_out"])
        return found

    made = client.put("/api/v1/holdouts/global", json={"share_bp": 1000}, headers=a.bearer)
    assert made.status_code == 200, made.text
    glob = made.json()
    ten = held(glob["id"])
    assert 20 < len(ten) < 60  # about 10 % of 400
    assert ten == {p for p in people if bucket_of(f"global:{a.workspace_id}", p) < 1000}
    # A larger share only adds people.
    client.put("/api/v1/holdouts/global", json={"share_bp": 2000}, headers=a.bearer)
    twenty = held(glob["id"])
    assert ten < twenty and len(twenty) > len(ten)
    assert client.get("/api/v1/holdouts", headers=a.bearer).json()[0]["id"] == glob["id"]

    use = client.post("/api/v1/holdouts", json={"name": "双11对照", "share_bp": 2000}, headers=a.bearer).json()
    other = held(use["id"])
    assert other != twenty and 40 < len(other) < 120  # independent of the global draw
    assert (
        client.post("/api/v1/holdouts", json={"name": "双11对照", "share_bp": 10}, headers=a.bearer).status_code == 409
    )
    assert client.post("/api/v1/holdouts", json={"name": "x", "share_bp": 6000}, headers=a.bearer).status_code == 422
    assert client.delete(f"/api/v1/holdouts/{glob['id']}", headers=a.bearer).status_code == 409

    # The profile 360 names the holdouts a person is in; a segment's split counts them.
    identify(client, a, "u1", {"phone": "13900000001"})
    person = profile_of(client, a, "13900000001")
    seg = client.post(
        "/api/v1/segments", json={"name": "名单", "kind": "static", "profile_ids": [person]}, headers=a.bearer
    ).json()
    split = client.get(f"/api/v1/holdouts/{use['id']}/split", params={"segment_id": seg["id"]}, headers=a.bearer)
    in_use = bucket_of(f"holdout:{use['id']}", person) < 2000
    assert split.json() == {"members": 1, "held_out": int(in_use)}
    detail = client.get(f"/api/v1/profiles/{person}", headers=a.bearer).json()
    in_global = bucket_of(f"global:{a.workspace_id}", person) < 2000
    expected = {n for n, inside in (("全局控制组", in_global), ("双11对照", in_use)) if inside}
    assert {h["name"] for h in detail["holdouts"]} == expected
    assert [s["name"] for s in detail["segments"]] == ["名单"]

    viewer = make_actor(db, "acme", role=Role.VIEWER)
    csrf = login(client, viewer.email)
    denied = client.put("/api/v1/holdouts/global", json={"share_bp": 0}, headers={"X-CSRF-Token": csrf})
    assert denied.status_code == 403
