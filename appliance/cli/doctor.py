"""`appliance doctor`: one check per component, each with what to do when it fails."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from appliance.settings import Settings

_TIMEOUT_S = 3.0


@dataclass
class CheckReport:
    name: str
    ok: bool
    rows: list[tuple[str, str]] = field(default_factory=list)
    # One line for the summary table, and what to do when the check failed.
    summary: str = ""
    advice: str = ""
    skipped: bool = False

    @property
    def state(self) -> str:
        return "skipped" if self.skipped else "ok" if self.ok else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "ok": self.ok,
            "state": self.state,
            "summary": self.summary,
            "advice": self.advice,
            "rows": dict(self.rows),
        }


Check = Callable[[Settings], CheckReport]


def settings_failure(error: Exception) -> CheckReport:
    """The report when the settings do not load: nothing else can be checked."""
    from appliance.settings.loader import settings_dir

    return CheckReport(
        "settings",
        False,
        [("settings folder", str(settings_dir()))],
        summary=str(error),
        advice="fix the setting named above in settings*.yaml or the APPLIANCE__ environment "
        "variable, then run `appliance doctor` again",
    )


def settings_check(settings: Settings) -> CheckReport:
    from appliance.settings.loader import settings_dir

    profiles = ", ".join(settings.profile) or "none"
    rows = [
        ("settings folder", str(settings_dir())),
        ("profiles", profiles),
        ("data folder", str(settings.data_dir)),
        ("ingest mode", settings.ingest.mode),
        ("vector store", settings.vector_store.mode),
    ]
    return CheckReport("settings", True, rows, summary=f"valid (profiles: {profiles})")


def redis_check(settings: Settings) -> CheckReport:
    if settings.ingest.mode != "celery":
        return _skipped("redis", "not used: ingest.mode is inline (no queue)")
    import redis

    from ingest.celery_app import QUEUE

    url = settings.broker.url
    client = redis.Redis.from_url(url, socket_connect_timeout=_TIMEOUT_S, socket_timeout=_TIMEOUT_S)
    try:
        version = client.info("server")["redis_version"]
        waiting = int(client.llen(QUEUE))
    except redis.RedisError as error:
        return CheckReport(
            "redis",
            False,
            [("broker.url", _safe_url(url))],
            summary=f"not answering at {_safe_url(url)}: {error}",
            advice="start Redis (`systemctl start redis-server`) or correct broker.url "
            "(APPLIANCE_BROKER_URL); uploads are refused until it answers",
        )
    finally:
        client.close()
    return CheckReport(
        "redis",
        True,
        [("broker.url", _safe_url(url)), ("version", version), ("documents waiting", str(waiting))],
        summary=f"Redis {version} at {_safe_url(url)}, {waiting} documents waiting",
    )


def workers_check(settings: Settings) -> CheckReport:
    if settings.ingest.mode != "celery":
        return _skipped("workers", "not used: ingest.mode is inline (this process ingests)")
    import redis

    from ingest.celery_app import create_celery_app

    try:
        # kombu retries a dead broker for seconds; one quick ping says it is down.
        redis.Redis.from_url(settings.broker.url, socket_connect_timeout=_TIMEOUT_S).ping()
        replies = create_celery_app(settings).control.ping(timeout=_TIMEOUT_S)
    except Exception as error:  # redis-py and kombu raise several kinds when the broker is down
        return CheckReport(
            "workers",
            False,
            summary=f"cannot ask the workers: {type(error).__name__}: {error}",
            advice="Redis must answer first (see the redis row)",
        )
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return CheckReport(
            "workers",
            False,
            [("broker.url", _safe_url(settings.broker.url))],
            summary=f"no worker answered within {_TIMEOUT_S:.0f} s: queued documents wait",
            advice="start workers (`systemctl start appliance-worker@1`, or "
            "`appliance worker`) on the worker nodes; `journalctl -u 'appliance-worker@*'` "
            "shows why one stopped",
        )
    return CheckReport(
        "workers",
        True,
        [("answering", ", ".join(names))],
        summary=f"{len(names)} answering: {', '.join(names)}",
    )


def chroma_check(settings: Settings) -> CheckReport:
    store = settings.vector_store
    if store.mode == "chroma_embedded":
        # Not opened: a second process on an embedded Chroma folder breaks the first one's
        # reads, and the API may be running on it.
        folder = settings.chroma_dir
        if not folder.exists():
            return CheckReport(
                "chroma",
                True,
                [("folder", str(folder))],
                summary=f"embedded, {folder} not created yet (nothing ingested)",
            )
        if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
            return CheckReport(
                "chroma",
                False,
                [("folder", str(folder))],
                summary=f"embedded folder {folder} is not writable by this user",
                advice=f"run as the appliance's user, or `chown -R appliance: {folder}`",
            )
        size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        return CheckReport(
            "chroma",
            True,
            [("folder", str(folder)), ("size", f"{size / 2**20:.1f} MB")],
            summary=f"embedded folder {folder}, {size / 2**20:.1f} MB",
        )
    import httpx

    url = f"http://{store.host}:{store.port}"
    try:
        beat = httpx.get(f"{url}/api/v2/heartbeat", timeout=_TIMEOUT_S)
        beat.raise_for_status()
        version = httpx.get(f"{url}/api/v2/version", timeout=_TIMEOUT_S).json()
    except httpx.HTTPError as error:
        return CheckReport(
            "chroma",
            False,
            [("server", url)],
            summary=f"server not answering at {url}: {error}",
            advice="start it (`systemctl start appliance-chroma`) or correct "
            "vector_store.host/port (APPLIANCE_CHROMA_HOST/PORT)",
        )
    return CheckReport(
        "chroma",
        True,
        [("server", url), ("version", str(version))],
        summary=f"server {version} at {url}",
    )


def inference_check(settings: Settings) -> CheckReport:
    import httpx

    llm = settings.llm
    rows = [("llm.base_url", llm.base_url), ("llm.model", llm.model)]
    try:
        # What the API's health check asks, without loading the LLM client's libraries.
        response = httpx.get(
            llm.base_url.rstrip("/") + "/models",
            headers={"Authorization": f"Bearer {llm.api_key}"},
            timeout=httpx.Timeout(_TIMEOUT_S * 3, connect=_TIMEOUT_S),
        )
        response.raise_for_status()
        served = [entry["id"] for entry in response.json().get("data", [])]
    except (httpx.HTTPError, ValueError, KeyError):
        return CheckReport(
            "inference",
            False,
            rows,
            summary=f"not answering at {llm.base_url}: questions get 503 InferenceUnavailable",
            advice="start it (`systemctl start appliance-inference` or `appliance models "
            "serve`); `journalctl -u appliance-inference` shows why it stopped; or correct "
            "llm.base_url (APPLIANCE_LLM_BASE_URL)",
        )
    rows.append(("served", ", ".join(served) or "nothing"))
    if llm.model not in served:
        return CheckReport(
            "inference",
            False,
            rows,
            summary=f"serves {served}, not the configured model {llm.model!r}",
            advice="serve the configured model (inference.profile) or set llm.model to the "
            "served name",
        )
    integrity, advice = _model_integrity(settings, llm.model)
    rows.append(("model files", integrity))
    return CheckReport(
        "inference",
        not advice,
        rows,
        summary=f"serves {llm.model}; {integrity}",
        advice=advice,
    )


def _model_integrity(settings: Settings, served: str) -> tuple[str, str]:
    """What the manifest says of the active version's files here, and advice if they differ."""
    from models.manifest import Manifest, ModelIntegrityError
    from models.registry import ModelRegistry

    manifest = Manifest(settings.models_dir)
    version = ModelRegistry(settings.models_dir).active(served)
    if version not in manifest.entries():
        return (
            f"not in this node's manifest ({settings.models_dir}): check it on the inference "
            "node with `appliance doctor`",
            "",
        )
    try:
        entry = manifest.verify(version)
    except ModelIntegrityError as error:
        return str(error), (
            "restore the model folder from the bundle (or `appliance models prepare --force`), "
            "then restart the inference service"
        )
    return f"version {version} matches the manifest, hash {entry.digest()[:16]}", ""


def audit_check(settings: Settings) -> CheckReport:
    from appliance.audit.log import AuditLog

    if not settings.audit.url and not settings.audit_path.is_file():
        # Not created here: run as root, it would leave files the service's user cannot write.
        return CheckReport(
            "audit", True, summary=f"no records yet ({settings.audit_path} is made on first use)"
        )
    report = AuditLog.for_settings(settings).verify()
    rows = [("records checked", str(report.checked)), ("signed head at seq", str(report.head_seq))]
    if report.ok:
        return CheckReport(
            "audit", True, rows, summary=f"chain intact, {report.checked} records verified"
        )
    first = report.problems[0]
    return CheckReport(
        "audit",
        False,
        rows + [(f"seq {problem.seq}", problem.message) for problem in report.problems[:5]],
        summary=f"{len(report.problems)} problem(s), first at seq {first.seq}: {first.kind}",
        advice="`appliance audit verify` lists every problem; compare with your last "
        "`appliance audit export` and treat it as a security incident",
    )


def disk_check(settings: Settings) -> CheckReport:
    folder = _existing_parent(settings.data_dir)
    usage = shutil.disk_usage(folder)
    share = usage.free / usage.total if usage.total else 0.0
    rows = [
        ("data folder", str(settings.data_dir)),
        ("free", f"{usage.free / 2**30:.1f} GiB of {usage.total / 2**30:.1f} GiB ({share:.0%})"),
    ]
    summary = f"{usage.free / 2**30:.1f} GiB free ({share:.0%}) in {folder}"
    limits = settings.doctor
    if usage.free < limits.min_free_gib * 2**30 or share < limits.min_free_share:
        return CheckReport(
            "disk",
            False,
            rows,
            summary=summary,
            advice=f"free space under {folder} (at least {limits.min_free_gib:g} GiB and "
            f"{limits.min_free_share:.0%}), e.g. `appliance audit purge` after an export, or move "
            "data_dir to a larger volume",
        )
    return CheckReport("disk", True, rows, summary=summary)


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
    ok = guard.armed and not overridden
    if ok:
        advice = ""
    elif overridden:
        advice = f"unset {', '.join(item.split('=')[0] for item in overridden)}"
    else:
        advice = "set egress.guard: true (the guard is what keeps data in the building)"
    cohere = "; Cohere ON" if settings.connectors.cohere.sends_anything else ""
    return CheckReport("egress", ok, rows, summary=f"{state}{cohere}", advice=advice)


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


def _skipped(name: str, why: str) -> CheckReport:
    return CheckReport(name, True, summary=why, skipped=True)


def _safe_url(url: str) -> str:
    """A URL for display: a password in it is not shown."""
    from sqlalchemy import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: show the scheme and host only
        return url.split("@")[-1]


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# A new check is one function here; the order is the order of the table.
CHECKS: dict[str, Check] = {
    "settings": settings_check,
    "redis": redis_check,
    "workers": workers_check,
    "chroma": chroma_check,
    "inference": inference_check,
    "audit": audit_check,
    "egress": egress_check,
    "disk": disk_check,
}


def run_checks(settings: Settings, only: list[str] | None = None) -> list[CheckReport]:
    return [_run(name, settings) for name in only or CHECKS]


def _run(name: str, settings: Settings) -> CheckReport:
    try:
        return CHECKS[name](settings)
    except Exception as error:  # one broken component must not hide the others' state
        return CheckReport(
            name,
            False,
            summary=f"the check itself failed: {type(error).__name__}: {error}",
            advice="see the message; `appliance doctor --json` has the details",
        )


def print_reports(reports: list[CheckReport], console: Console, details: bool = False) -> None:
    """One table: each check, its state, what was found and what to do. `details`: each
    check's own table too."""
    if details:
        for report in reports:
            verdict = "[green]ok[/]" if report.ok else "[bold red]needs attention[/]"
            table = Table("", "", title=f"{report.name}: {verdict}", show_header=False)
            for key, value in report.rows:
                table.add_row(key, value)
            console.print(table)
        return
    table = Table("check", "state", "found", "what to do")
    colour = {"ok": "green", "skipped": "dim", "FAIL": "bold red"}
    for report in reports:
        state = f"[{colour[report.state]}]{report.state}[/]"
        table.add_row(report.name, state, report.summary, report.advice)
    console.print(table)
