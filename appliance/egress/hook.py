"""The egress guard: a process-wide audit hook that refuses connections the policy does not allow.

Python audit hooks see every socket the interpreter opens (`socket.connect`, `sendto`, name
lookups), in any thread and any library, before a packet leaves. Code that opens sockets in C
without Python's socket module is out of their sight: uvloop (run uvicorn with loop="asyncio"),
libpq (psycopg, which only reaches catalog.url) and Chroma's Rust core. The systemd units'
IPAddressAllow= is the kernel-level net under this one.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from appliance.egress.policy import EgressPolicy, parse_ip, resolve_host
from appliance.errors import EgressDenied
from appliance.settings import Settings

RefusalListener = Callable[[str, str, int], None]

_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
    }
)
# Families whose peers are on this machine: a filesystem path, or the kernel itself.
_LOCAL_FAMILIES = frozenset(
    family for name in ("AF_UNIX", "AF_NETLINK") if (family := getattr(socket, name, None))
)
_INET_FAMILIES = frozenset({socket.AF_INET, socket.AF_INET6})
# A configured name that moved to a new address (CDNs rotate them) is looked up again on a
# miss, but not more often than this, so a loop of refused attempts cannot flood DNS.
_RESOLVE_AGAIN_AFTER_S = 5.0

# Settings cannot switch these off: they are the libraries' own phone-home paths.
PHONE_HOME_OFF = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    # unstructured pings packages.unstructured.io on import and after every partition call
    # unless one of these two is set; huggingface_hub honours DO_NOT_TRACK too.
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
    # Chroma clients built without our client settings (scripts, bench) read this.
    "ANONYMIZED_TELEMETRY": "False",
    # vLLM started from this process (`appliance models serve`) inherits it.
    "VLLM_NO_USAGE_STATS": "1",
    # onnxruntime (loaded by unstructured for PDFs) uploads usage events from C++, unseen by
    # the audit hook: measured, parsing a PDF looked up mobile.events.data.microsoft.com.
    "ORT_DISABLE_TELEMETRY": "1",
}

logger = logging.getLogger("appliance.egress")


@dataclass(frozen=True)
class Refusal:
    destination: str
    host: str
    port: int
    event: str
    at: float


class EgressGuard:
    """One per process. The hook cannot be removed once added, so arming swaps its policy."""

    def __init__(self) -> None:
        self._policy: EgressPolicy | None = None
        self._listeners: list[RefusalListener] = []
        self._refused = 0
        self._recent: deque[Refusal] = deque(maxlen=20)
        self._resolved_at = 0.0
        self._lock = threading.Lock()
        self._inside = threading.local()
        self._hooked = False
        # A Celery pool forks while another thread may hold the lock.
        os.register_at_fork(after_in_child=self._after_fork)

    @property
    def policy(self) -> EgressPolicy | None:
        return self._policy

    @property
    def armed(self) -> bool:
        return self._policy is not None

    @property
    def refused(self) -> int:
        """Attempts refused in this process since it started."""
        return self._refused

    @property
    def recent(self) -> list[Refusal]:
        return list(self._recent)

    def arm(self, policy: EgressPolicy) -> None:
        with self._lock:
            if not self._hooked:
                sys.addaudithook(self._hook)
                self._hooked = True
            self._policy = policy
            self._resolved_at = time.monotonic()

    def disarm(self) -> None:
        self._policy = None

    def add_listener(self, listener: RefusalListener) -> Callable[[], None]:
        """`listener(destination, host, port)` runs on each refusal; returns its remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @contextmanager
    def own_lookups(self) -> Iterator[None]:
        """The guard's own lookups of configured names, in this thread, pass unchecked."""
        self._inside.resolving = True
        try:
            yield
        finally:
            self._inside.resolving = False

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        # Runs for every audit event of the process (open, import, exec...): stay cheap.
        if event not in _EVENTS:
            return
        policy = self._policy
        if policy is None or getattr(self._inside, "resolving", False):
            return
        refused = self._check(policy, event, args)
        if refused is not None:
            self._refuse(event, *refused)

    def _check(
        self, policy: EgressPolicy, event: str, args: tuple[Any, ...]
    ) -> tuple[str, int] | None:
        """None when allowed, else the (host, port) refused."""
        if event.startswith("socket.gethostbyname"):
            host, port = args[0], 0
        elif event == "socket.getaddrinfo":
            host, port = args[0], _port(args[1])
        else:
            sock, address = args[0], args[1]
            if address is None:  # sendmsg on a connected socket: its connect() was checked
                return None
            if sock.family in _LOCAL_FAMILIES:
                return None
            if sock.family not in _INET_FAMILIES:
                return (f"<{getattr(sock.family, 'name', sock.family)}>", 0)
            host, port = address[0], _port(address[1])
        if isinstance(host, bytes):
            host = host.decode("ascii", errors="replace")  # IDNA names are ASCII on the wire
        if not host:  # getaddrinfo(None or "") looks up this machine's wildcard address
            return None
        if policy.allows_host(host) or self._allows_after_resolving_again(policy, host):
            return None
        return (host, port)

    def _allows_after_resolving_again(self, policy: EgressPolicy, host: str) -> bool:
        if not policy.names or parse_ip(host) is None:
            return False
        now = time.monotonic()
        if now - self._resolved_at < _RESOLVE_AGAIN_AFTER_S:
            return False
        self._resolved_at = now
        with self.own_lookups():
            fresh = policy.resolved(resolve_host)
        if self._policy is policy:  # not disarmed or re-armed meanwhile
            self._policy = fresh
        return fresh.allows_host(host)

    def _refuse(self, event: str, host: str, port: int) -> None:
        destination = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        with self._lock:
            self._refused += 1
            self._recent.append(Refusal(destination, host, port, event, time.time()))
        # A listener that itself tries to leave is refused too, without calling listeners again.
        if not getattr(self._inside, "busy", False):
            self._inside.busy = True
            try:
                logger.warning("egress refused: %s (%s)", destination, event)
                for listener in list(self._listeners):
                    try:
                        listener(destination, host, port)
                    except Exception:
                        logger.exception("egress refusal listener %r failed", listener)
            finally:
                self._inside.busy = False
        raise EgressDenied(
            f"The appliance refused to connect to {destination}: only this machine and the hosts "
            "named in its settings may be reached (egress.allow_hosts adds more)."
        )


def _port(value: object) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return int(value) if isinstance(value, str) and value.isdigit() else 0


guard = EgressGuard()


def silence_phone_home() -> None:
    """Turns off the known telemetry and hub lookups unless the environment already decided."""
    for name, value in PHONE_HOME_OFF.items():
        os.environ.setdefault(name, value)
    decline_openvino_telemetry()


def decline_openvino_telemetry() -> None:
    """`import openvino` starts Intel's telemetry with consent assumed when no consent file
    exists, writes a client id under ~/intel and posts to Google Analytics from a child
    process (measured: www.google-analytics.com looked up while ingesting with the OpenVINO
    embedder). Its only opt-outs are CI-like variables and a file in the user's home, so the
    consent check is answered "declined" in this process instead: nothing is written or sent,
    whatever the service user's home holds."""
    if importlib.util.find_spec("openvino_telemetry") is None:
        return
    from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker

    def declined(self: OptInChecker, *args: object, **kwargs: object) -> ConsentCheckResult:
        return ConsentCheckResult.DECLINED

    OptInChecker.check = declined  # type: ignore[method-assign]


def arm_from_settings(settings: Settings) -> EgressPolicy | None:
    """Call first thing in every entry point (API, worker, CLI): libraries read their opt-outs
    at import. Returns the armed policy, or None when egress.guard is off."""
    silence_phone_home()
    if not settings.egress.guard:
        guard.disarm()
        logger.warning("egress guard is off (egress.guard: false): any destination is reachable")
        return None
    # Resolved before arming, and unchecked: re-arming must not be refused by the old policy.
    with guard.own_lookups():
        policy = EgressPolicy.from_settings(settings)
    guard.arm(policy)
    return policy
