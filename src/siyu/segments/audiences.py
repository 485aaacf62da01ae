"""Audience files for ad platforms, exactly as each takes them, of a segment's members who gave the
separate consent to have their data provided to an ad platform (PIPL art. 23); everyone else is
left out and counted with the reason.

- Tencent Ads (``custom_audience_files/add``): a zip holding one .txt, one id per line.
  ``HASH_MOBILE_PHONE`` is the MD5 of the 11-digit mobile number (no +86), lowercase hex;
  ``SHA256_MOBILE_PHONE`` its SHA-256; ``WX_UNIONID`` and ``WX_OPENID`` the ids as they are
  (openids of one app, given as ``open_app_id`` with the upload).
- Ocean Engine (``dmp/data_source/file/upload``): a zip whose file holds, per line, the base64 of
  one serialized ``toutiao.dmp.DmpData`` — up to 10,000 ``IdItem`` (dataType
  ``MOBILE_HASH_SHA256`` = 6, id the lowercase SHA-256 hex of the 11-digit number).
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.orm import Session

from siyu.core.errors import ValidationFailedError
from siyu.identity.facade import identities_of_profiles
from siyu.profiles.facade import granted_consents
from siyu.segments import library, membership

Platform = Literal["tencent", "oceanengine"]
# The id types each platform takes here, and the identifier kind each is made from.
ID_TYPES: dict[str, dict[str, str]] = {
    "tencent": {
        "HASH_MOBILE_PHONE": "phone",
        "SHA256_MOBILE_PHONE": "phone",
        "WX_UNIONID": "unionid",
        "WX_OPENID": "openid",
    },
    "oceanengine": {"MOBILE_HASH_SHA256": "phone"},
}
MAX_ZIP_BYTES = {"tencent": 100 * 1024 * 1024, "oceanengine": 50 * 1024 * 1024}
IDS_PER_LINE = 10_000
OCEAN_MOBILE_HASH_SHA256 = 6

NO_CONSENT = "no audience-upload consent"
NO_IDENTIFIER = "no identifier of this type"
NOT_CN_MOBILE = "not a mainland China mobile number"


@dataclass(frozen=True)
class AudienceFile:
    """A file ready to upload, and who is in it: every member is either included or excluded
    with a reason."""

    platform: str
    id_type: str
    filename: str
    content: bytes
    members: int
    included: int
    ids: int  # a person may bring several (two phones)
    excluded: dict[str, int] = field(default_factory=dict)


def audience_file(
    scoped: Session, segment_id: str, platform: str, id_type: str, app_id: str | None = None
) -> AudienceFile:
    segment = library.get_segment_row(scoped, segment_id)
    kind = ID_TYPES.get(platform, {}).get(id_type)
    if kind is None:
        known = {p: sorted(t) for p, t in ID_TYPES.items()}
        raise ValidationFailedError(
            f"{platform} does not take {id_type} here; use one of {known}", details={"path": "id_type"}
        )
    if id_type == "WX_OPENID" and not app_id:
        raise ValidationFailedError("WX_OPENID needs the app id the openids belong to", details={"path": "app_id"})
    people = sorted(membership.members_of(scoped, segment.id))
    consented = _consented(scoped, people)
    excluded: Counter[str] = Counter()
    excluded[NO_CONSENT] = len(people) - len(consented)
    ids_of: dict[str, set[str]] = {}
    bad_phone: set[str] = set()
    for profile_id, _, found_kind, scope, value in identities_of_profiles(scoped, consented, [kind]):
        if found_kind == "openid" and scope != app_id:
            continue
        if kind == "phone":
            digits = _cn_mobile(value)
            if digits is None:
                bad_phone.add(profile_id)
                continue
            value = _hashed(id_type, digits)
        ids_of.setdefault(profile_id, set()).add(value)
    for profile_id in consented:
        if profile_id not in ids_of:
            excluded[NOT_CN_MOBILE if profile_id in bad_phone else NO_IDENTIFIER] += 1
    ids = sorted({v for values in ids_of.values() for v in values})
    name = f"{segment.id}_{id_type.lower()}"
    content = _tencent_zip(name, ids) if platform == "tencent" else _ocean_zip(name, ids)
    if len(content) > MAX_ZIP_BYTES[platform]:
        raise ValidationFailedError(
            f"the file is {len(content) // 1_048_576} MB; {platform} takes at most "
            f"{MAX_ZIP_BYTES[platform] // 1_048_576} MB: split the segment"
        )
    return AudienceFile(
        platform,
        id_type,
        f"{name}.zip",
        content,
        members=len(people),
        included=len(ids_of),
        ids=len(ids),
        excluded={reason: n for reason, n in excluded.items() if n},
    )


def _consented(scoped: Session, people: list[str]) -> list[str]:
    """The people with a standing audience-upload grant on any identifier of theirs."""
    kinds = ["phone", "email", "openid", "unionid", "wecom_external_userid", "user_id", "member_no"]
    owned = identities_of_profiles(scoped, people, kinds)
    granted = granted_consents(scoped, [row[1] for row in owned], "ads", "audience_upload")
    return sorted({row[0] for row in owned if row[1] in granted})


def _cn_mobile(e164: str) -> str | None:
    """The 11-digit number of a mainland China mobile in E.164, else None."""
    if e164.startswith("+86") and len(e164) == 14 and e164[3] == "1" and e164[3:].isdigit():
        return e164[3:]
    return None


def _hashed(id_type: str, digits: str) -> str:
    if id_type == "HASH_MOBILE_PHONE":
        return hashlib.md5(digits.encode(), usedforsecurity=False).hexdigest()
    return hashlib.sha256(digits.encode()).hexdigest()


def _tencent_zip(name: str, ids: list[str]) -> bytes:
    return _zipped(f"{name}.txt", "".join(f"{i}\n" for i in ids).encode())


def _ocean_zip(name: str, ids: list[str]) -> bytes:
    lines = (base64.b64encode(dmp_data(ids[i : i + IDS_PER_LINE])).decode() for i in range(0, len(ids), IDS_PER_LINE))
    return _zipped(f"{name}.txt", "".join(f"{line}\n" for line in lines).encode())


def _zipped(filename: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(filename, data)
    return out.getvalue()


# Ocean Engine's DmpData, proto2 wire format, written by hand: the message is tiny. ------------


def dmp_data(ids: list[str], data_type: int = OCEAN_MOBILE_HASH_SHA256) -> bytes:
    """``DmpData { repeated IdItem idList = 1; }`` with one ``IdItem { dataType = 2; id = 3 }``
    per id (ids lowercase)."""
    out = bytearray()
    for item in _items(ids, data_type):
        out += _key(1, 2) + _varint(len(item)) + item
    return bytes(out)


def _items(ids: list[str], data_type: int) -> Iterator[bytes]:
    for value in ids:
        raw = value.lower().encode()
        yield _key(2, 0) + _varint(data_type) + _key(3, 2) + _varint(len(raw)) + raw


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
