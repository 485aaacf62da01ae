"""Ids: 26 characters in the ULID layout, sortable by time, and monotonic within a process — in
one millisecond and when the clock steps back — so "older" is never a coin toss."""

from __future__ import annotations

import pytest

import siyu.core.ids as ids


def test_ids_are_ulid_shaped_and_follow_creation_order() -> None:
    minted = [ids.new_id("pf_") for _ in range(20_000)]
    assert all(len(i) == 29 and i.startswith("pf_") for i in minted)
    assert minted == sorted(minted) and len(set(minted)) == len(minted)


def test_ids_in_one_millisecond_and_after_the_clock_steps_back_still_rise(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_800_000_000_000_000_000]
    monkeypatch.setattr(ids.time, "time_ns", lambda: now[0])
    same_ms = [ids.new_id() for _ in range(100)]
    now[0] -= 5_000_000_000  # the clock steps back five seconds
    after = [ids.new_id() for _ in range(100)]
    minted = same_ms + after
    assert minted == sorted(minted) and len(set(minted)) == len(minted)
    assert {i[:10] for i in minted} == {same_ms[0][:10]}  # all on the last millisecond seen
