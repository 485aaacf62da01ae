"""Provider rate limits: the token bucket lets through ``rate`` messages a second (after its
burst), within 1 %, however the sends are batched."""

from __future__ import annotations

import pytest

from siyu.channels.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(("rate", "batch"), [(100.0, 1), (100.0, 37), (5000.0, 100), (3.5, 1)])
def test_the_bucket_keeps_the_rate_within_one_percent(rate: float, batch: int) -> None:
    clock = Clock()
    bucket = TokenBucket(rate, clock=clock, sleep=clock.sleep)
    sent = 0
    while clock.now < 100.0:
        bucket.take(batch)
        sent += batch
    achieved = (sent - bucket.burst) / clock.now
    assert abs(achieved - rate) / rate < 0.01, achieved


def test_idle_time_earns_no_more_than_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(10.0, burst=5.0, clock=clock, sleep=clock.sleep)
    clock.now = 3600.0  # an hour idle
    waited = [bucket.take(1) for _ in range(5)]
    assert waited == [0.0] * 5  # the burst goes at once
    assert bucket.take(1) == pytest.approx(0.1)  # then the rate applies


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
