"""Incremental resolution in the store equals the reference partition, whatever the order."""

from __future__ import annotations

import random
import threading
from dataclasses import replace

import pytest
from sqlalchemy import event, select

from siyu.identity import resolver
from siyu.identity.contracts import IdentifierKind
from siyu.identity.partition import resolve
from siyu.identity.resolver import (
    holds_resolution_turn,
    observe,
    observe_many,
    resolve_seen,
    stored_people,
    take_resolution_turn,
)
from siyu.identity.rules import DEFAULT_RULES, IdentityRules
from siyu.identity.settings import save_rules, workspace_rules
from siyu.identity.tables import Identity, IdentityConflict, IdentityMerge
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import make_actor
from tests.test_identity_partition import M1, MASK, N1, N2, P1, POOL, U1, U2, obs


def _ingest(db: Database, workspace_id: str, observations: list) -> set:  # type: ignore[type-arg]
    for o in observations:
        with db.transaction(Scope.workspace(workspace_id)) as s:
            observe(s, o)
    with db.transaction(Scope.workspace(workspace_id)) as s:
        return stored_people(s)


def test_channels_join_and_the_oldest_profile_survives(db: Database) -> None:
    a = make_actor(db, "acme")
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        first = observe(s, obs(N1, MASK))
        second = observe(s, obs(U1, P1))
    assert first.profile_id and second.profile_id and first.profile_id != second.profile_id
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        joined = observe(s, obs(P1, N1))  # the Tmall buyer authorised their phone
    assert joined.profile_id == min(first.profile_id, second.profile_id)
    assert [c.action for c in joined.changes] == ["merge"]
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        assert stored_people(s) == {frozenset({U1, P1, N1})}
        audit = s.scalars(select(IdentityMerge)).all()
    assert len(audit) == 1 and audit[0].action == "merge" and audit[0].rule.startswith("link:")


def test_new_identifiers_are_stored_once_already_on_their_person(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    moved: list[tuple[str, str]] = []
    real = resolver.update_rows

    def spy(scoped, model, columns, rows):  # type: ignore[no-untyped-def]
        if model is Identity:
            moved.extend(rows)
        return real(scoped, model, columns, rows)

    monkeypatch.setattr(resolver, "update_rows", spy)
    a = make_actor(db, "acme")
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        person = observe(s, obs(U1, P1)).profile_id
        assert observe(s, obs(P1, N1)).profile_id == person  # a new buyer id joins the person
        stranger = observe(s, obs(N2)).profile_id
    assert moved == []  # each was inserted with its profile, not inserted and then moved
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        stored = {r.value: r.profile_id for r in s.scalars(select(Identity))}
        assert observe(s, obs(N2, U1)).profile_id == person  # the older profile survives
    assert stored == {U1.value: person, P1.value: person, N1.value: person, N2.value: stranger}
    assert [to for _identity, to in moved] == [person]  # a merge moves the stored identity across


def test_a_family_phone_is_a_recorded_conflict(db: Database) -> None:
    a = make_actor(db, "acme")
    people = _ingest(db, a.workspace_id, [obs(U1, P1), obs(U2, P1)])
    assert len(people) == 2
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        [conflict] = s.scalars(select(IdentityConflict)).all()
    assert conflict.reason == "max_per_profile:unionid"


def test_a_value_that_becomes_shared_splits_the_people_it_had_joined(db: Database) -> None:
    a = make_actor(db, "acme")
    buyers = [obs(N1, P1), obs(N2, P1)]
    assert len(_ingest(db, a.workspace_id, buyers)) == 1  # one phone, two nicks: maybe one person
    from siyu.identity.contracts import Identifier, IdentifierKind

    more = [obs(Identifier(IdentifierKind.TAOBAO_NICK, "taobao", f"x{i}"), P1) for i in range(3)]
    people = _ingest(db, a.workspace_id, more)  # five buyers on one phone: a shop's phone
    assert len(people) == 5 and all(P1 not in p for p in people)
    assert people == set(resolve(buyers + more).people)


def test_incremental_equals_reference_for_random_sequences(db: Database) -> None:
    rnd = random.Random(7)
    for round_ in range(12):
        a = make_actor(db, f"r{round_}")
        observations = [frozenset(rnd.sample(POOL, rnd.randint(1, 4))) for _ in range(rnd.randint(3, 18))]
        stored = _ingest(db, a.workspace_id, observations)
        reference = resolve(observations)
        assert stored == set(reference.people), observations
        rnd.shuffle(observations)
        b = make_actor(db, f"s{round_}")
        assert _ingest(db, b.workspace_id, observations) == stored


def test_member_joins_wechat_through_the_phone(db: Database) -> None:
    a = make_actor(db, "acme")
    assert _ingest(db, a.workspace_id, [obs(U1, P1), obs(M1, P1)]) == {frozenset({U1, P1, M1})}


def test_operator_split_and_merge_match_the_reference(db: Database) -> None:
    from siyu.core.errors import ConflictError
    from siyu.identity.operators import merge_profiles, split_profile
    from siyu.identity.tables import Identity

    a = make_actor(db, "acme")
    observations = [obs(U1, P1), obs(P1, N1), obs(N2)]
    _ingest(db, a.workspace_id, observations)
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        ids = {r.value: r for r in s.scalars(select(Identity))}
        profile = ids["u1"].profile_id
        assert profile
        split_profile(s, profile, [ids["nick1"].id], actor_id=None)
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        people = stored_people(s)
        kept = s.scalar(select(Identity.profile_id).where(Identity.value == "u1"))
    assert people == set(resolve(observations, cannot_link=[(N1, U1), (N1, P1)]).people)
    assert kept == profile  # the side with the strongest identifier keeps the profile id
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        p_n1 = s.scalar(select(Identity.profile_id).where(Identity.value == "nick1"))
        p_n2 = s.scalar(select(Identity.profile_id).where(Identity.value == "nick2"))
        assert p_n1 and p_n2
        merge_profiles(s, p_n1, p_n2, actor_id=None)
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        assert frozenset({N1, N2}) in stored_people(s)
        # Undo the split: merging back replaces the cannot-links.
        nicks = s.scalar(select(Identity.profile_id).where(Identity.value == "nick1"))
        assert nicks
        merge_profiles(s, profile, nicks, actor_id=None)
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        assert stored_people(s) == {frozenset({U1, P1, N1, N2})}
    # Two WeChat users can never be merged: refused, nothing changes.
    b = make_actor(db, "beta")
    _ingest(db, b.workspace_id, [obs(U1), obs(U2)])
    with db.transaction(Scope.workspace(b.workspace_id)) as s:
        p1 = s.scalar(select(Identity.profile_id).where(Identity.value == "u1"))
        p2 = s.scalar(select(Identity.profile_id).where(Identity.value == "u2"))
        assert p1 and p2
        with pytest.raises(ConflictError, match="max_per_profile:unionid"):
            merge_profiles(s, p1, p2, actor_id=None)


def test_transactions_resolving_one_workspace_take_turns(db: Database) -> None:
    """A second transaction's resolution waits until the first commits, so it sees the first's
    links (SQLite: the write turn; PostgreSQL: an advisory lock per workspace)."""
    a = make_actor(db, "acme")
    scope = Scope.workspace(a.workspace_id)
    for alone in (U1, P1):  # two people at first
        with db.transaction(scope) as s:
            observe(s, obs(alone))
    second_done = threading.Event()

    def second() -> None:
        with db.transaction(scope) as s:
            observe(s, obs(P1, N1))
        second_done.set()

    with db.transaction(scope) as s:
        observe(s, obs(U1, P1))  # they are one; meanwhile another request links P1 to N1
        worker = threading.Thread(target=second)
        worker.start()
        assert not second_done.wait(0.5)  # still waiting for our commit
    worker.join(30)
    assert second_done.is_set()
    with db.read(scope) as s:
        assert stored_people(s) == {frozenset({U1, P1, N1})}


def test_a_transaction_asks_for_its_resolution_turn_once(db: Database) -> None:
    """Resolution asks for the turn wherever it needs it; PostgreSQL is asked once per
    transaction (the lock is held until commit), and again in the next transaction."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers take turns before BEGIN")
    a = make_actor(db, "acme")
    scope = Scope.workspace(a.workspace_id)
    asked: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "pg_advisory_xact_lock" in statement:
            asked.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        for turn in range(2):
            with db.transaction(scope) as s:
                observe(s, obs(U1, P1))  # new people: both the observation and the re-solve ask
                take_resolution_turn(s)
            assert len(asked) == turn + 1
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_what_teaches_the_graph_nothing_resolves_without_the_turn(db: Database) -> None:
    a = make_actor(db, "acme")
    scope = Scope.workspace(a.workspace_id)
    with db.transaction(scope) as s:
        observe(s, obs(U1, P1))
        observe(s, obs(N1, MASK))
    seen_again = [obs(U1, P1), obs(P1), obs(N1, MASK), obs(MASK)]
    subjects = [P1, None, None, None]
    with db.transaction(scope) as s:
        seen = resolve_seen(s, seen_again, subjects=subjects)
        assert db.engine.dialect.name == "sqlite" or not holds_resolution_turn(s)
        assert seen == observe_many(s, seen_again, subjects=subjects)  # the same answer, by reading
        assert seen is not None and seen.primary_identity_ids[0] == seen.identity_ids[P1]
        assert resolve_seen(s, [obs(U1), obs(N1, P1)]) is None  # a pair never seen
        assert resolve_seen(s, [obs(U1), obs(U2)]) is None  # an identifier never seen
        assert resolve_seen(s, []) == observe_many(s, [])


def test_rules_are_read_once_per_transaction_and_saving_them_is_seen_at_once(db: Database) -> None:
    a = make_actor(db, "acme")
    kinds = dict(DEFAULT_RULES.kinds)
    kinds[IdentifierKind.EMAIL] = replace(kinds[IdentifierKind.EMAIL], merges=False)
    strict = IdentityRules(kinds)
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        assert workspace_rules(s) is DEFAULT_RULES
        save_rules(s, strict, a.user_id)
        assert workspace_rules(s) == strict  # this transaction's own change
        assert workspace_rules(s) is workspace_rules(s)
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        assert workspace_rules(s) == strict
