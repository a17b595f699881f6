"""Usage limits per key and per group, on a clock the test moves."""

from __future__ import annotations

import pytest

from appliance.auth.principal import Principal
from appliance.auth.usage_limits import RateLimited, UsageLimiter
from appliance.settings.settings import LimitsSettings, UsageLimit


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # a minute boundary (divisible by 60)

    def __call__(self) -> float:
        return self.now


def _key(key_id: str, *groups: str) -> Principal:
    return Principal(f"user-{key_id}", "reader", frozenset(groups), key_id=key_id)


def _refused(limiter: UsageLimiter, principal: Principal, path: str = "/v1/search"):
    with pytest.raises(RateLimited) as refused:
        limiter.admit(principal, path)
    return refused.value


def test_a_key_over_its_minute_waits_for_the_next_and_others_are_not_held() -> None:
    clock = Clock()
    limiter = UsageLimiter(LimitsSettings(per_key=UsageLimit(requests_per_minute=3)), clock=clock)
    noisy, quiet = _key("aaaaaaaaaaaa"), _key("bbbbbbbbbbbb")
    for _ in range(3):
        limiter.admit(noisy, "/v1/search")
    clock.now += 15
    first = _refused(limiter, noisy)
    assert first.retry_after == 45 and first.exceeded.first_in_window
    assert not _refused(limiter, noisy).exceeded.first_in_window  # audited once a window
    limiter.admit(quiet, "/v1/search")
    clock.now += 45
    limiter.admit(noisy, "/v1/search")
    assert _refused_after(limiter, noisy, 2).exceeded.first_in_window  # a new window


def _refused_after(limiter: UsageLimiter, principal: Principal, admitted: int):
    for _ in range(admitted):
        limiter.admit(principal, "/v1/search")
    return _refused(limiter, principal)


def test_a_keys_own_limits_replace_the_default_and_groups_count_together() -> None:
    clock = Clock()
    settings = LimitsSettings(
        per_key=UsageLimit(requests_per_minute=100),
        keys={"cccccccccccc": UsageLimit(requests_per_minute=1)},
        groups={"contractors": UsageLimit(requests_per_minute=3)},
    )
    limiter = UsageLimiter(settings, clock=clock)
    limiter.admit(_key("cccccccccccc"), "/v1/search")
    assert _refused(limiter, _key("cccccccccccc")).exceeded.scope == "key"
    one, two = _key("dddddddddddd", "contractors"), _key("eeeeeeeeeeee", "contractors")
    limiter.admit(one, "/v1/search")
    limiter.admit(two, "/v1/search")
    limiter.admit(one, "/v1/search")
    refused = _refused(limiter, two)
    assert (refused.exceeded.scope, refused.exceeded.name) == ("group", "contractors")
    limiter.admit(_key("ffffffffffff", "staff"), "/v1/search")  # another group is free


def test_generated_tokens_per_day_stop_answers_until_the_next_utc_day() -> None:
    clock = Clock()
    limiter = UsageLimiter(LimitsSettings(per_key=UsageLimit(tokens_per_day=100)), clock=clock)
    key = _key("aaaaaaaaaaaa")
    limiter.admit(key, "/v1/query")
    limiter.spent(key, 60)
    limiter.admit(key, "/v1/chat/completions")
    limiter.spent(key, 60)
    refused = _refused(limiter, key, "/v1/query")
    assert refused.exceeded.limit == "tokens_per_day"
    assert refused.retry_after == 86_400 - int(clock.now % 86_400)
    limiter.admit(key, "/v1/search")  # reading passages generates nothing
    clock.now += refused.retry_after
    limiter.admit(key, "/v1/query")


def test_the_cli_on_the_host_has_no_limits() -> None:
    limiter = UsageLimiter(LimitsSettings(per_key=UsageLimit(requests_per_minute=1)))
    for _ in range(5):
        limiter.admit(Principal.local("root"), "/v1/query")
