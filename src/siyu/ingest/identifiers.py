"""Which identifiers an event carries: userId, anonymousId, and well-known traits.

Trait values that are not valid identifiers (a phone field holding "n/a") stay on the event as
traits but identify nobody.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from siyu.identity.contracts import Identifier, IdentifierKind
from siyu.identity.errors import InvalidIdentifierError
from siyu.identity.facade import identity_exists
from siyu.identity.normalise import normalise
from siyu.ingest.contracts import EventType, IncomingEvent

K = IdentifierKind
TRAIT_KINDS = {
    "phone": K.PHONE,
    "mobile": K.PHONE,
    "email": K.EMAIL,
    "unionid": K.UNIONID,
    "member_no": K.MEMBER_NO,
    "memberNo": K.MEMBER_NO,
}


def identifiers_of(scoped: Session, event: IncomingEvent, carried: list[Identifier]) -> list[Identifier]:
    """All the event's identifiers: those it carries (see :func:`carried_identifiers`) and, for an
    alias, its previousId as the database knows it."""
    if event.type is EventType.ALIAS and event.previous_id:
        return [*carried, alias_target(scoped, event.previous_id)]
    return carried


def carried_identifiers(event: IncomingEvent) -> list[Identifier]:
    """The identifiers an event names, but for an alias's previousId (which needs the database:
    see :func:`alias_target`). Pure, so it can run before the writing transaction."""
    found: list[Identifier] = []
    if event.user_id:
        found.append(normalise(K.USER_ID, event.user_id))
    if event.anonymous_id:
        found.append(normalise(K.ANONYMOUS_ID, event.anonymous_id))
    if event.context:
        found.extend(_context_identifiers(event))
    if event.type is EventType.GROUP:  # group traits describe the group, not the person
        return found
    context_traits = event.context.get("traits") if event.context else None
    traits = {**context_traits, **event.traits} if isinstance(context_traits, dict) else event.traits
    if traits:
        for key, kind in TRAIT_KINDS.items():
            value = traits.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                try:
                    found.append(normalise(kind, value))
                except InvalidIdentifierError:
                    continue
    return found


def alias_target(scoped: Session, previous_id: str) -> Identifier:
    """An alias's previousId: an earlier userId if one is known by that value, else an
    anonymousId (Segment's alias)."""
    as_user = normalise(K.USER_ID, previous_id)
    return as_user if identity_exists(scoped, as_user) else normalise(K.ANONYMOUS_ID, previous_id)


def subject_of(event: IncomingEvent) -> Identifier | None:
    """Who the event was sent as: its userId, else its anonymousId. Events and the traits they
    carry belong to this identifier, so they follow it through merges and splits."""
    if event.user_id:
        return normalise(K.USER_ID, event.user_id)
    if event.anonymous_id:
        return normalise(K.ANONYMOUS_ID, event.anonymous_id)
    declared = _context_identifiers(event)
    return declared[0] if declared else None


def _context_identifiers(event: IncomingEvent) -> list[Identifier]:
    """``context.identifiers``: [{kind, scope, value}] declared by a source that knows them (order
    sync, callbacks); invalid ones are skipped."""
    declared = event.context.get("identifiers")
    found: list[Identifier] = []
    if isinstance(declared, list):
        for item in declared[:20]:
            if isinstance(item, dict):
                try:
                    found.append(normalise(str(item.get("kind")), item.get("value", ""), str(item.get("scope") or "")))
                except InvalidIdentifierError:
                    continue
    return found
