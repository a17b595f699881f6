"""Failed authentication per client address: refused past the limit until the window ends."""

from appliance.auth.failures import FailedAuthLimiter, worth_a_record


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_refused_past_the_limit_until_its_window_ends() -> None:
    clock = Clock()
    limiter = FailedAuthLimiter(3, window_s=60, clock=clock)
    for expected in (1, 2, 3):
        assert limiter.retry_after("10.0.0.9") is None
        assert limiter.failed("10.0.0.9") == expected
    clock.now += 20
    assert limiter.retry_after("10.0.0.9") == 40
    assert limiter.retry_after("10.0.0.7") is None  # another address is not held back
    clock.now += 40
    assert limiter.retry_after("10.0.0.9") is None
    assert limiter.failed("10.0.0.9") == 1


def test_memory_stays_bounded_when_the_flood_comes_from_many_addresses() -> None:
    clock = Clock()
    limiter = FailedAuthLimiter(3, window_s=60, clock=clock, max_clients=100)
    for n in range(100):
        limiter.failed(f"10.0.{n // 256}.{n % 256}")
    clock.now += 61
    limiter.failed("192.168.1.1")
    assert len(limiter._windows) == 1


def test_records_of_a_flood_grow_with_its_order_of_magnitude() -> None:
    recorded = [n for n in range(1, 10_001) if worth_a_record(n, 30)]
    assert recorded == [*range(1, 11), 30, 100, 1000, 10_000]
