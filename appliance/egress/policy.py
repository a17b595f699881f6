"""What the egress guard allows: loopback, unix sockets, and the hosts the settings name."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlsplit

from appliance.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], set[IPAddress]]

# Names that always mean this machine (RFC 6761 reserves *.localhost too).
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})

logger = logging.getLogger("appliance.egress")


def normalize_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def parse_ip(text: str) -> IPAddress | None:
    """The address in `text`, or None for a host name; IPv4-mapped IPv6 counts as IPv4."""
    try:
        # A link-local IPv6 address may carry a zone (fe80::1%eth0), which ipaddress refuses.
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def is_local(ip: IPAddress) -> bool:
    # Linux routes a connect() to 0.0.0.0 or :: to this machine.
    return ip.is_loopback or ip.is_unspecified


def resolve_host(name: str) -> set[IPAddress]:
    """The addresses `name` resolves to now; none if it does not resolve (it stays closed)."""
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError as error:
        logger.warning("allowed host %s does not resolve (%s); connections to it fail", name, error)
        return set()
    return {ip for info in infos if (ip := parse_ip(str(info[4][0]))) is not None}


def _url_host(url: str) -> str | None:
    return urlsplit(url.strip()).hostname


def hosts_from_settings(settings: Settings) -> dict[str, list[str]]:
    """Every host this process is configured to reach, with the settings keys that name it."""
    found: dict[str, list[str]] = {}

    def add(host: str | None, key: str) -> None:
        if host:
            found.setdefault(normalize_name(host), []).append(key)

    # kombu accepts several broker URLs separated by ';' (failover).
    for url in settings.broker.url.split(";"):
        add(_url_host(url), "broker.url")
    for key, url in (("catalog.url", settings.catalog.url), ("audit.url", settings.audit.url)):
        if not url:
            continue
        database = urlsplit(url)
        add(database.hostname, key)
        # SQLAlchemy's PostgreSQL dialects take further hosts as ?host=db1:5432&host=db2.
        for value in parse_qs(database.query).get("host", []):
            for item in value.split(","):
                add(_url_host(f"//{item}"), key)
    if settings.vector_store.mode == "chroma_server":
        add(settings.vector_store.host, "vector_store.host")
    add(_url_host(settings.llm.base_url), "llm.base_url")
    for url in settings.llm.base_urls:
        add(_url_host(url), "llm.base_urls")
    # `appliance models status` asks the inference service directly, not through llm.base_url.
    add(settings.inference.host, "inference.host")
    cohere = settings.connectors.cohere
    if cohere.sends_anything:
        add(_url_host(cohere.base_url), "connectors.cohere.base_url")
    for host in settings.egress.allow_hosts:
        add(host, "egress.allow_hosts")
    return found


@dataclass(frozen=True)
class EgressPolicy:
    """Allowed host names, addresses and networks; loopback and unix sockets always are."""

    names: frozenset[str] = frozenset()
    addresses: frozenset[IPAddress] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    # For `appliance doctor --egress`: each configured host and the settings keys naming it.
    reasons: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    @classmethod
    def from_hosts(
        cls, hosts: Mapping[str, Iterable[str]], resolve: Resolver | None = resolve_host
    ) -> EgressPolicy:
        names: set[str] = set()
        addresses: set[IPAddress] = set()
        networks: list[IPNetwork] = []
        for host in hosts:
            ip = parse_ip(host)
            if ip is not None:
                addresses.add(ip)
            elif "/" in host:
                networks.append(ipaddress.ip_network(host, strict=False))
            else:
                names.add(normalize_name(host))
        policy = cls(
            frozenset(names),
            frozenset(addresses),
            tuple(networks),
            {host: tuple(keys) for host, keys in hosts.items()},
        )
        return policy.resolved(resolve) if resolve else policy

    @classmethod
    def from_settings(
        cls, settings: Settings, resolve: Resolver | None = resolve_host
    ) -> EgressPolicy:
        """`resolve=None` computes the allowlist without any DNS lookup (doctor, tests)."""
        return cls.from_hosts(hosts_from_settings(settings), resolve)

    def resolved(self, resolve: Resolver) -> EgressPolicy:
        """This policy plus its names' current addresses: connect() sees addresses, not names."""
        found = {ip for name in self.names if not _is_loopback_name(name) for ip in resolve(name)}
        return replace(self, addresses=self.addresses | found)

    def allows_address(self, ip: IPAddress) -> bool:
        return is_local(ip) or ip in self.addresses or any(ip in net for net in self.networks)

    def allows_host(self, host: str) -> bool:
        """`host` as a connect() or getaddrinfo() caller gives it: a name or an address."""
        ip = parse_ip(host)
        if ip is not None:
            return self.allows_address(ip)
        name = normalize_name(host)
        return _is_loopback_name(name) or name in self.names


def _is_loopback_name(name: str) -> bool:
    return name in LOOPBACK_NAMES or name.endswith(".localhost")
