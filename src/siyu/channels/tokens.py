"""Access tokens kept in the operational store, sealed, so every worker shares one."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from siyu.channels.tables import AccessToken
from siyu.core.clock import utcnow
from siyu.storage.scoping import Scope
from siyu.storage.sealing import seal, unseal
from siyu.storage.session import Database

# Refresh a little before the provider's expiry, so a token never lapses mid-request.
EARLY_SECONDS = 300


class DbTokenStore:
    def __init__(self, db: Database, workspace_id: str, secret_key: str) -> None:
        self.db = db
        self.scope = Scope.workspace(workspace_id)
        self.secret_key = secret_key

    def get(self, key: str) -> str | None:
        with self.db.read(self.scope) as scoped:
            row = scoped.get(AccessToken, key)
            if row is None or row.expires_at <= utcnow():
                return None
            return unseal(self.secret_key, row.token_sealed)

    def put(self, key: str, token: str, expires_in: float) -> None:
        expires_at = utcnow() + timedelta(seconds=max(expires_in - EARLY_SECONDS, expires_in / 2))
        with self.db.transaction(self.scope) as scoped:
            row = scoped.get(AccessToken, key)
            if row is None:
                scoped.add(AccessToken(key=key, token_sealed=seal(self.secret_key, token), expires_at=expires_at))
            else:
                row.token_sealed = seal(self.secret_key, token)
                row.expires_at = expires_at

    def drop(self, key: str, token: str) -> None:
        with self.db.transaction(self.scope) as scoped:
            row = scoped.get(AccessToken, key)
            if row is not None and unseal(self.secret_key, row.token_sealed) == token:
                scoped.execute(delete(AccessToken).where(AccessToken.key == key))
