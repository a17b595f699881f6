"""The egress guard: this process reaches only loopback and the hosts its settings name."""

from appliance.egress.hook import (
    PHONE_HOME_OFF,
    EgressGuard,
    Refusal,
    RefusalListener,
    arm_from_settings,
    guard,
    silence_phone_home,
)
from appliance.egress.policy import EgressPolicy, hosts_from_settings

__all__ = [
    "PHONE_HOME_OFF",
    "EgressGuard",
    "EgressPolicy",
    "Refusal",
    "RefusalListener",
    "arm_from_settings",
    "guard",
    "hosts_from_settings",
    "silence_phone_home",
]
