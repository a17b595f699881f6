"""`appliance doctor`: checks of this installation, one function each, printed as tables."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from appliance.settings import Settings


@dataclass
class CheckReport:
    name: str
    ok: bool
    rows: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "rows": dict(self.rows)}


Check = Callable[[Settings], CheckReport]


def egress_check(settings: Settings) -> CheckReport:
    """What this process may connect to, whether the guard enforces it, and what it refused."""
    from appliance.egress import PHONE_HOME_OFF, guard, hosts_from_settings
    from appliance.egress.policy import is_local, parse_ip

    if guard.armed:
        state = "armed: other destinations are refused and audited"
    elif not settings.egress.guard:
        state = "OFF (egress.guard: false): any destination is reachable"
    else:
        state = "not armed in this process"
    rows = [
        ("guard", state),
        ("always allowed", "loopback (127.0.0.0/8, ::1, localhost), unix sockets"),
    ]
    for host, keys in hosts_from_settings(settings).items():
        ip = parse_ip(host)
        where = " (this machine)" if ip is not None and is_local(ip) else ""
        rows.append((f"allowed {host}", f"{', '.join(keys)}{where}"))
    if guard.policy is not None:
        resolved = sorted(str(ip) for ip in guard.policy.addresses if not is_local(ip))
        rows.append(("allowed addresses", ", ".join(resolved) or "none outside this machine"))
    rows.append(("cohere connector", _cohere_state(settings)))
    overridden = [
        f"{name}={os.environ[name]}"
        for name, value in PHONE_HOME_OFF.items()
        if name in os.environ and _truthy(os.environ[name]) != _truthy(value)
    ]
    rows.append(("telemetry opt-outs", "; ".join(overridden) or "all set"))
    rows.append(("refused in this process", str(guard.refused)))
    if guard.recent:
        rows.append(("last refused", ", ".join(item.destination for item in guard.recent)))
    return CheckReport("egress", guard.armed and not overridden, rows)


def _cohere_state(settings: Settings) -> str:
    cohere = settings.connectors.cohere
    if not cohere.enabled:
        return "off: nothing is sent to Cohere"
    if not cohere.sends_anything:
        return "enabled, but use_for or allowed_collections is empty: nothing is sent"
    return (
        f"ON for {', '.join(cohere.use_for)} at {cohere.base_url}; collections that may leave: "
        f"{', '.join(cohere.allowed_collections)}"
    )


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


# A new check is one function here and one option on the `doctor` command.
CHECKS: dict[str, Check] = {"egress": egress_check}


def run_checks(settings: Settings, only: list[str] | None = None) -> list[CheckReport]:
    return [CHECKS[name](settings) for name in only or CHECKS]


def print_reports(reports: list[CheckReport], console: Console) -> None:
    for report in reports:
        verdict = "[green]ok[/]" if report.ok else "[bold red]needs attention[/]"
        table = Table("", "", title=f"{report.name}: {verdict}", show_header=False)
        for key, value in report.rows:
            table.add_row(key, value)
        console.print(table)
