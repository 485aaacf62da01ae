"""Unsubscribe tokens for one-click links (RFC 8058): opaque, signed with the installation's
secret over (workspace, channel, address), compared in constant time — a link cannot be edited
to unsubscribe someone else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from siyu.core.errors import NotFoundError


def _mac(secret_key: str, payload: bytes) -> bytes:
    return hmac.new(f"siyu-unsubscribe:{secret_key}".encode(), payload, hashlib.sha256).digest()[:16]


def make_token(secret_key: str, workspace_id: str, channel: str, address: str) -> str:
    payload = json.dumps([workspace_id, channel, address], separators=(",", ":"), ensure_ascii=False).encode()
    raw = _mac(secret_key, payload) + payload
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_token(secret_key: str, token: str) -> tuple[str, str, str]:
    """(workspace_id, channel, address) of a genuine token; anything else is not found."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        mac, payload = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, _mac(secret_key, payload)):
            raise ValueError
        workspace_id, channel, address = json.loads(payload)
    except (ValueError, TypeError):
        raise NotFoundError("unknown unsubscribe link") from None
    return str(workspace_id), str(channel), str(address)


def unsubscribe_url(public_url: str, secret_key: str, workspace_id: str, channel: str, address: str) -> str:
    return f"{public_url.rstrip('/')}/u/{make_token(secret_key, workspace_id, channel, address)}"
