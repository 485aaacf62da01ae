"""Opaque tokens for API keys and sessions: random, shown once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

from siyu.accounts.contracts import KeyScope

_KEY_PREFIX = {KeyScope.INGEST: "wk", KeyScope.FULL: "sk"}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_key_token(scope: KeyScope) -> tuple[str, str]:
    """Return (token, display prefix). Tokens carry 256 bits of randomness."""
    token = f"{_KEY_PREFIX[scope]}_{secrets.token_urlsafe(32)}"
    return token, token[:10]


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)
