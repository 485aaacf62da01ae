"""The identity partition: rules in scenarios, and the batch rebuild equal to the reference."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siyu.demo.generator import SyntheticBrand
from siyu.identity.contracts import Identifier, IdentifierKind
from siyu.identity.normalise import normalise
from siyu.identity.partition import Observation, resolve
from siyu.identity.rebuild import rebuild

K = IdentifierKind


def ident(kind: IdentifierKind, value: str, scope: str = "") -> Identifier:
    return Identifier(kind, scope, value, weak=kind is K.MASKED_PHONE)


U1, U2 = ident(K.UNIONID, "u1"), ident(K.UNIONID, "u2")
P1, P2 = ident(K.PHONE, "+8613800000001"), ident(K.PHONE, "+8613800000002")
N1, N2 = ident(K.TAOBAO_NICK, "nick1", "taobao"), ident(K.TAOBAO_NICK, "nick2", "taobao")
M1 = ident(K.MEMBER_NO, "M1")
MASK = ident(K.MASKED_PHONE, "138****0001", "taobao")


def obs(*ids: Identifier) -> Observation:
    return frozenset(ids)


def people(observations: list[Observation], **kw: object) -> set[frozenset[Identifier]]:
    return set(resolve(observations, **kw).people)  # type: ignore[arg-type]


def test_shared_identifiers_join_channels() -> None:
    got = people([obs(U1, P1), obs(P1, N1), obs(M1, P1)])
    assert got == {frozenset({U1, P1, N1, M1})}


def test_masked_phones_never_merge() -> None:
    got = people([obs(N1, MASK), obs(N2, MASK)])
    assert got == {frozenset({N1}), frozenset({N2})}


def test_a_shops_phone_merges_nobody_and_is_reported() -> None:
    buyers = [ident(K.TAOBAO_NICK, f"buyer{i}", "taobao") for i in range(5)]
    result = resolve([obs(b, P1) for b in buyers])
    assert result.shared == frozenset({P1})
    assert set(result.people) == {frozenset({b}) for b in buyers}


def test_a_family_phone_cannot_make_two_wechat_users_one() -> None:
    result = resolve([obs(U1, P1), obs(U2, P1)])
    assert len(result.people) == 2
    assert [c.reason for c in result.conflicts] == ["max_per_profile:unionid"]
    # The phone stays with one of them, chosen by rule order, not by arrival.
    again = resolve([obs(U2, P1), obs(U1, P1)])
    assert set(again.people) == set(result.people)


def test_operator_split_and_merge() -> None:
    base = [obs(U1, P1), obs(P1, N1)]
    split = resolve(base, cannot_link=[(U1, N1)])
    assert len(split.people) == 2 and split.conflicts[0].reason == "split"
    merged = resolve([obs(N1), obs(N2)], must_link=[(N1, N2)])
    assert set(merged.people) == {frozenset({N1, N2})}


def _records(observations: list[Observation]) -> pa.Table:
    rows = [(i, x.kind.value, x.scope, x.value) for i, o in enumerate(observations) for x in sorted(o)]
    return pa.table(
        {
            "obs": pa.array([r[0] for r in rows], pa.int64()),
            "kind": [r[1] for r in rows],
            "scope": [r[2] for r in rows],
            "value": [r[3] for r in rows],
        }
    )


POOL = (
    [ident(K.UNIONID, f"u{i}") for i in range(4)]
    + [ident(K.PHONE, f"+861380000000{i}") for i in range(5)]
    + [ident(K.TAOBAO_NICK, f"n{i}", "taobao") for i in range(5)]
    + [ident(K.MEMBER_NO, f"M{i}") for i in range(3)]
    + [ident(K.OPENID, f"o{i}", "wx5d3e8a1b2c4f6a7b") for i in range(3)]
    # The same strings again under another app id and as other kinds: different identifiers.
    + [ident(K.OPENID, f"o{i}", "wx9a8b7c6d5e4f3a2b") for i in range(2)]
    + [ident(K.JD_PIN, "n0", "jd"), ident(K.MEMBER_NO, "o0")]
    + [ident(K.MASKED_PHONE, "138****0000", "taobao")]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.frozensets(st.sampled_from(POOL), min_size=1, max_size=4), min_size=1, max_size=25), st.randoms())
def test_rebuild_equals_the_reference_and_arrival_order_does_not_matter(
    observations: list[Observation], rnd: object
) -> None:
    reference = resolve(observations)
    shuffled = list(observations)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert set(resolve(shuffled).people) == set(reference.people)
    batch = rebuild(_records(observations))
    assert batch.people() == set(reference.people)
    assert set(zip(batch.shared.column("value").to_pylist(), batch.shared.column("kind").to_pylist(), strict=True)) == {
        (s.value, s.kind.value) for s in reference.shared
    }


def test_rebuild_honours_manual_constraints() -> None:
    observations = [obs(U1, P1), obs(P1, N1), obs(N2)]
    expected = resolve(observations, must_link=[(N1, N2)], cannot_link=[(U1, N1)])
    got = rebuild(_records(observations), must_link=[(N1, N2)], cannot_link=[(U1, N1)])
    assert got.people() == set(expected.people)


@pytest.mark.parametrize("customers", [3000])
def test_rebuild_finds_the_people_of_the_synthetic_brand(customers: int) -> None:
    brand = SyntheticBrand(seed=21, customers=customers, until=datetime(2026, 11, 1, tzinfo=UTC))
    chunk = brand.chunk(0)
    # Each person's channel records are observations: the identifiers one channel saw together.
    ids = chunk.identities.to_pylist()
    people = {p["person_id"]: p for p in chunk.people.to_pylist()}
    rows = []
    for obs_id, r in enumerate(ids):
        person = people[r["person_id"]]
        canon = normalise(r["kind"], r["value"], r["scope"])
        rows.append((obs_id, canon))
        # WeChat and member records carry the unionid / phone they were linked by.
        for kind, key in ((K.UNIONID, "unionid"), (K.PHONE, "phone")):
            linked = person[key]
            if (
                linked
                and r["kind"] in ("openid", "wecom_external_userid", "member_no")
                and (kind is K.UNIONID or r["kind"] == "member_no")
            ):
                rows.append((obs_id, normalise(kind, linked)))
    table = pa.table(
        {
            "obs": [o for o, _ in rows],
            "kind": [i.kind.value for _, i in rows],
            "scope": [i.scope for _, i in rows],
            "value": [i.value for _, i in rows],
        }
    )
    result = rebuild(table)
    truth = {(normalise(r["kind"], r["value"], r["scope"])): r["person_id"] for r in ids}
    predicted: dict[int, set[int]] = {}
    for k, s, v, p in zip(
        result.kinds.to_pylist(),
        result.scopes.to_pylist(),
        result.values.to_pylist(),
        result.person.tolist(),
        strict=True,
    ):
        owner = truth.get(Identifier(IdentifierKind(k), s, v))
        if owner is not None:
            predicted.setdefault(p, set()).add(owner)
    impure = sum(1 for owners in predicted.values() if len(owners) > 1)
    assert impure / len(predicted) < 0.01  # merged different people: only through shared family phones


def test_rebuild_keeps_apart_equal_values_of_different_kinds_and_scopes() -> None:
    # The same string as a Taobao nick, a JD pin and a member number: three identifiers.
    nick, pin = ident(K.TAOBAO_NICK, "lily", "taobao"), ident(K.JD_PIN, "lily", "jd")
    member = ident(K.MEMBER_NO, "lily")
    observations = [obs(nick, P1), obs(pin), obs(member, U1), obs(U1, N2)]
    expected = resolve(observations)
    got = rebuild(_records(observations))
    assert got.people() == set(expected.people)
    assert len(got.people()) == 3


def test_rebuild_finds_constrained_identifiers_among_equal_strings() -> None:
    # "lily" is a nick, a pin and two apps' openids; the constraints name one of each.
    nick, pin = ident(K.TAOBAO_NICK, "lily", "taobao"), ident(K.JD_PIN, "lily", "jd")
    first, second = ident(K.OPENID, "lily", "wx5d3e8a1b2c4f6a7b"), ident(K.OPENID, "lily", "wx9a8b7c6d5e4f3a2b")
    observations = [obs(nick, P1), obs(pin, P2), obs(first, U1), obs(second, U2)]
    constraints = {"must_link": [(pin, second)], "cannot_link": [(nick, pin)]}
    expected = resolve(observations, **constraints)  # type: ignore[arg-type]
    got = rebuild(_records(observations), **constraints)  # type: ignore[arg-type]
    assert got.people() == set(expected.people)
    assert {pin, P2, second, U2} in got.people()


def test_rebuild_does_not_depend_on_how_observations_are_numbered_or_ordered() -> None:
    rnd = random.Random(2)
    observations = [frozenset(rnd.sample(POOL, rnd.randint(1, 4))) for _ in range(40)]
    records = _records(observations)
    sparse = records.set_column(0, "obs", pa.array([o * 1_000_003 + 7 for o in records.column("obs").to_pylist()]))
    shuffled = sparse.take(pa.array(rnd.sample(range(sparse.num_rows), sparse.num_rows)))
    assert rebuild(shuffled).people() == rebuild(records).people() == set(resolve(observations).people)
