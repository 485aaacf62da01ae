"""Short links: minted in bulk as messages are prepared (one per person and message, drawn from
the message's key, so the same message gets the same code), or one at a time for a QR code or
a page; with UTM parameters added to where they lead."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError, ValidationFailedError
from siyu.storage.bulk import append_rows
from siyu.storage.scoping import require_workspace
from siyu.tracking.tables import Link

CODE_LENGTH = 12
CODE = re.compile(rf"^[0-9A-Za-z]{{{CODE_LENGTH}}}$")
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
_COLUMNS = (
    "code",
    "kind",
    "target",
    "name",
    "source",
    "channel",
    "message_key",
    "profile_id",
    "created_by",
    "created_at",
)


def _base62(digest: bytes) -> str:
    n = int.from_bytes(digest, "big")
    out = []
    for _ in range(CODE_LENGTH):
        n, r = divmod(n, 62)
        out.append(ALPHABET[r])
    return "".join(out)


def message_code(secret_key: str, workspace_id: str, message_key: str, target: str) -> str:
    """A message's link's code: keyed by the installation's secret, so codes cannot be guessed
    from keys, and the same for the same message and target."""
    mac = hmac.new(secret_key.encode(), f"{workspace_id}|{message_key}|{target}".encode(), hashlib.sha256)
    return _base62(mac.digest()[:16])


def with_utm(url: str, utm: Mapping[str, str]) -> str:
    """``url`` with the UTM parameters it does not set itself already."""
    if not utm:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    query += [(k, v) for k, v in utm.items() if k in UTM_KEYS and v and k not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def check_target(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000 or any(c in url for c in "\r\n\t "):
        raise ValidationFailedError(
            "a link leads to an http(s) address of at most 2000 characters", details={"path": "target"}
        )
    return url


def short_url(public_url: str, code: str) -> str:
    return f"{public_url.rstrip('/')}/s/{code}"


class LinkMinter:
    """The ``shorten`` hook of a send: each message's link becomes a short link, kept in memory
    until :meth:`save` writes them all in one statement (with the messages they belong to)."""

    def __init__(
        self,
        public_url: str,
        secret_key: str,
        workspace_id: str,
        *,
        source: str = "",
        channel: str = "",
        utm: Mapping[str, str] | None = None,
    ) -> None:
        self.public_url, self.secret_key, self.workspace_id = public_url, secret_key, workspace_id
        self.source, self.channel, self.utm = source, channel, dict(utm or {})
        self.rows: list[tuple[object, ...]] = []
        self._now = utcnow()

    def __call__(self, url: str, message_key: str) -> str:
        target = with_utm(url, self.utm)
        code = message_code(self.secret_key, self.workspace_id, message_key, target)
        profile_id = message_key.rsplit(":", 1)[-1] or None
        self.rows.append(
            (code, "message", target[:2000], "", self.source, self.channel, message_key, profile_id, None, self._now)
        )
        return short_url(self.public_url, code)

    def save(self, scoped: Session) -> int:
        """Write the links minted so far (those already stored stay as they are)."""
        written = append_rows(scoped, Link, _COLUMNS, self.rows, on_conflict=("code",))
        self.rows = []
        return written


@dataclass(frozen=True)
class LinkPublic:
    code: str
    kind: str
    target: str
    name: str
    source: str
    channel: str
    created_at: datetime


def link_to_public(row: Link) -> LinkPublic:
    return LinkPublic(row.code, row.kind, row.target, row.name, row.source, row.channel, row.created_at)


def create_link(
    scoped: Session,
    *,
    kind: str,
    target: str,
    name: str,
    channel: str = "",
    source: str = "",
    utm: Mapping[str, str] | None = None,
    actor_id: str | None = None,
) -> LinkPublic:
    """A link for a QR code or to share: its code is random."""
    if kind not in ("qr", "link"):
        raise ValidationFailedError("a link made by hand is a qr or a link", details={"path": "kind"})
    if not name.strip() or len(name) > 80:
        raise ValidationFailedError("a link needs a name of 1 to 80 characters", details={"path": "name"})
    row = Link(
        code="".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH)),
        kind=kind,
        target=with_utm(check_target(target), utm or {}),
        name=name.strip(),
        channel=channel,
        source=source,
        created_by=actor_id,
    )
    if len(row.target) > 2000:
        raise ValidationFailedError(
            "with its UTM parameters the link is over 2000 characters", details={"path": "target"}
        )
    require_workspace(scoped)
    scoped.add(row)
    scoped.flush()
    return link_to_public(row)


def get_link_row(scoped: Session, code: str) -> Link:
    row = scoped.scalar(select(Link).where(Link.code == code)) if CODE.match(code) else None
    if row is None:
        raise NotFoundError("link not found")
    return row
