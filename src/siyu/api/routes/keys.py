"""API keys: ingest-only write keys and full API keys."""

from __future__ import annotations

from fastapi import APIRouter, Request

from siyu.accounts import facade
from siyu.api.deps import Admin, ScopedSessionDep, key_cache
from siyu.api.errors import COMMON_ERRORS
from siyu.api.schemas import ApiKeyCreate, ApiKeyCreatedOut, ApiKeyPublic

router = APIRouter(prefix="/api/v1/keys", tags=["api keys"], responses=COMMON_ERRORS)


@router.get("", response_model=list[ApiKeyPublic])
def list_keys(principal: Admin, session: ScopedSessionDep) -> list[ApiKeyPublic]:
    """Keys of this workspace (tokens are never shown again)."""
    return [ApiKeyPublic.model_validate(k) for k in facade.list_api_keys(session)]


@router.post("", response_model=ApiKeyCreatedOut, status_code=201)
def create_key(body: ApiKeyCreate, principal: Admin, session: ScopedSessionDep) -> ApiKeyCreatedOut:
    """Create a key. The token is in this response only; siyu keeps its hash."""
    created = facade.create_api_key(session, principal, name=body.name, scope=body.scope)
    return ApiKeyCreatedOut(key=ApiKeyPublic.model_validate(created.key), token=created.token)


@router.post("/{key_id}/revoke", response_model=ApiKeyPublic)
def revoke_key(key_id: str, principal: Admin, session: ScopedSessionDep, request: Request) -> ApiKeyPublic:
    """Revoke a key at once; requests with it are refused from now on."""
    revoked = ApiKeyPublic.model_validate(facade.revoke_api_key(session, principal, key_id))
    session.commit()  # committed before this process forgets the keys it has checked
    key_cache(request).clear()
    return revoked
