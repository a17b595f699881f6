"""`appliance models ...`: prepare, quantize, serve, list, activate and roll back model versions.

main.py adds `models_app` to the `appliance` command; the helpers come from cli/common.py.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from appliance.cli.common import (
    JsonOption,
    cli_settings,
    console,
    errors,
    friendly,
    local_user,
    print_json,
    progress_bar,
)
from appliance.settings import Settings

if TYPE_CHECKING:
    from appliance.evaluation.gold import GoldQuestion
    from models.gate import GateVerdict
    from models.inference_server import InferenceServer, RunningServer
    from models.manifest import Manifest
    from models.profiles import LaunchProfile
    from models.registry import ModelRegistry


models_app = typer.Typer(
    help="Model versions (prepare, GPTQ quantize, activate with a quality gate, roll back) and "
    "the local inference service (vLLM) that serves the active one.",
    no_args_is_help=True,
)


def _inference_server(settings: Settings) -> InferenceServer:
    from appliance.private_dirs import make_private_dirs
    from models.inference_server import InferenceServer

    # Every folder it may create on the way, private (mode 0700).
    make_private_dirs(settings.run_dir)
    make_private_dirs(settings.logs_dir)
    inference = settings.inference
    return InferenceServer(
        inference.python, inference.host, inference.port, settings.run_dir, settings.logs_dir
    )


def _lifecycle(settings: Settings) -> tuple[LaunchProfile, Manifest, ModelRegistry]:
    """The launch profile (whose model is the name clients ask for), manifest and registry."""
    from models.manifest import Manifest
    from models.profiles import load_profile
    from models.registry import ModelRegistry

    return (
        load_profile(settings.inference.profile),
        Manifest(settings.models_dir),
        ModelRegistry(settings.models_dir),
    )


def _audit(settings: Settings, kind: str, payload: dict[str, Any]) -> None:
    from appliance.container import Components

    Components(settings).audit.append(kind, local_user().user, [], payload)


@models_app.command("prepare")
@friendly
def models_prepare(
    force: Annotated[bool, typer.Option(help="Rebuild even if a valid model is there.")] = False,
) -> None:
    """Build the default CPU model (SmolLM2-135M-Instruct) from the bundled GGUF, with hashes."""
    from models.prepare import prepare_smollm2

    settings = cli_settings()
    with console.status("converting the GGUF model to a folder vLLM can load"):
        entry, built = prepare_smollm2(settings.models.smollm2_wheel, settings.models_dir, force)
    size = sum(item.bytes for item in entry.files) / 2**20
    verb = "prepared" if built else "already prepared (hashes match)"
    console.print(
        f"{entry.name} {verb}: {len(entry.files)} files, {size:.0f} MB in "
        f"{settings.models_dir / entry.name}, manifest hash {entry.digest()[:16]}"
    )


@models_app.command("quantize")
@friendly
def models_quantize(
    source: Annotated[str, typer.Argument(help="The version to quantize (see `models list`).")],
    bits: Annotated[int, typer.Option(help="Bits per weight: 4 (or 2, 3, 8).")] = 4,
    group_size: Annotated[
        int,
        typer.Option(help="Weights sharing one scale; must divide the layer widths (576: 64)."),
    ] = 64,
    texts: Annotated[
        int | None,
        typer.Option(min=1, help="Indexed passages to calibrate on (models.calibration_texts)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Which passages are drawn (models.calibration_seed).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="The new version's name (default SOURCE-gptq-4bit-g64).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace a version of that name.")] = False,
    as_json: JsonOption = False,
) -> None:
    """GPTQ-quantize a version with GPTQModel, calibrated on passages of the indexed documents.

    The result is a new version beside its parent, with hashes, ready for `models activate`.
    """
    from appliance.container import Components
    from models.quantize import quantize_gptq, sample_calibration

    settings = cli_settings()
    _, manifest, _ = _lifecycle(settings)
    manifest.verify(source)
    count = texts or settings.models.calibration_texts
    seed = settings.models.calibration_seed if seed is None else seed
    chunk_ids, chunk_texts, _ = Components(settings).chunk_store.all_chunks()
    calibration = sample_calibration(list(zip(chunk_ids, chunk_texts, strict=True)), count, seed)
    log = settings.logs_dir / "quantize.log"
    description = f"GPTQ {bits}-bit, {len(calibration.texts)} passages (log {log})"
    with progress_bar(description, None, as_json) as advance:
        entry = quantize_gptq(
            settings.inference.python,
            manifest,
            source,
            calibration,
            log,
            bits=bits,
            group_size=group_size,
            name=name,
            force=force,
            progress=advance,
        )
    parent_mb = sum(item.bytes for item in manifest.get(source).files) / 2**20
    size_mb = sum(item.bytes for item in entry.files) / 2**20
    summary = {
        "version": entry.name,
        "parent": source,
        "megabytes": round(size_mb, 1),
        "parent_megabytes": round(parent_mb, 1),
        "manifest_sha256": entry.digest(),
        **entry.details,
    }
    _audit(settings, "model_quantized", summary)
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{entry.name}: {bits}-bit GPTQ of {source} in {entry.details['seconds']:.0f} s, "
        f"{size_mb:.0f} MB (parent {parent_mb:.0f} MB, {parent_mb / size_mb:.1f}x smaller), "
        f"calibrated on {len(calibration.texts)} of {calibration.available} indexed passages "
        f"(seed {seed}), manifest hash {entry.digest()[:16]}"
    )
    console.print(f"next: `appliance models activate {entry.name}` (runs the quality gate)")


@models_app.command("list")
@friendly
def models_list(as_json: JsonOption = False) -> None:
    """Every model version side by side, its parent, size, and which one is active."""
    from models.registry import list_versions

    settings = cli_settings()
    profile, manifest, registry = _lifecycle(settings)
    rows = list_versions(manifest, registry, [profile.model])
    switches = registry.switches(profile.model)
    if as_json:
        print_json(
            {
                "served_name": profile.model,
                "active": registry.active(profile.model),
                "versions": [row.__dict__ for row in rows],
                "switches": [switch.__dict__ for switch in switches],
            }
        )
        return
    table = Table("", "quantization", "parent", "size", "created (UTC)")
    # Names are what `activate` takes: shown whole, wrapped if need be, never cut.
    table.add_column("version", overflow="fold")
    for row in rows:
        created = datetime.fromtimestamp(row.created_at, UTC).strftime("%Y-%m-%d %H:%M")
        mark = "*" if row.active_for else ""
        table.add_row(
            mark, row.quantization, row.parent or "", f"{row.megabytes:.0f} MB", created, row.name
        )
    console.print(table)
    console.print(f"* active: clients asking for {profile.model!r} get this version")
    if switches:
        last = switches[-1]
        at = datetime.fromtimestamp(last.at, UTC).strftime("%Y-%m-%d %H:%M")
        forced = " (forced)" if last.forced else ""
        console.print(
            f"last switch: {last.action} {last.previous} -> {last.version}{forced} "
            f"by {last.actor} at {at} UTC"
        )


def _measure(settings: Settings, gold: list[GoldQuestion], version: str, hidden: bool) -> dict:
    """The gold set's metrics answered by whatever vLLM serves now (temperature 0)."""
    from appliance.evaluation.runner import runs_for_modes

    # Greedy decoding, so the two versions are compared on their answers, not on sampling luck;
    # the model writes every answer and nothing replaces it: the gate measures the model.
    llm = settings.llm.model_copy(update={"temperature": 0.0})
    answering = settings.answering.model_copy(update={"mode": "generate", "unsupported": "off"})
    repeatable = settings.model_copy(update={"llm": llm, "answering": answering})
    mode = settings.retrieval.mode
    with progress_bar(f"gold set on {version}", len(gold), hidden) as advance:
        runs = runs_for_modes(repeatable, gold, [mode], local_user(), True, 10, advance)
        return next(iter(runs)).metrics()


def _switch_to(
    settings: Settings, profile: LaunchProfile, manifest: Manifest, version: str, hidden: bool
) -> RunningServer:
    """Stops vLLM and starts it on `version`; if that fails, starts what ran before."""
    from models.inference_server import InferenceStartFailed

    server = _inference_server(settings)
    previous = server.version()
    timeout = settings.inference.start_timeout_s
    with nullcontext() if hidden else console.status(f"restarting vLLM on {version}"):
        server.stop()
        try:
            return server.start(profile, manifest, timeout, version)
        except InferenceStartFailed as error:
            if previous:
                server.start(profile, manifest, timeout, previous)
            raise InferenceStartFailed(
                f"{version} did not start, so {previous or 'nothing'} runs again: {error}"
            ) from None


def _gate(
    settings: Settings,
    profile: LaunchProfile,
    manifest: Manifest,
    active: str,
    candidate: str,
    gold: list[GoldQuestion],
    max_drop: float,
    hidden: bool,
) -> tuple[GateVerdict, bool]:
    """The verdict on both versions, and whether the candidate was left running to be kept."""
    from models.gate import judge

    metric = settings.models.gate_metric
    if metric == "answer_contains" and not any(item.expected_answer for item in gold):
        # Nothing to measure: say so before restarting anything.
        return judge(metric, {}, {}, max_drop), False
    server = _inference_server(settings)
    if server.pid() is None or server.version() != active:
        _switch_to(settings, profile, manifest, active, hidden)
    before = _measure(settings, gold, active, hidden)
    _switch_to(settings, profile, manifest, candidate, hidden)
    try:
        after = _measure(settings, gold, candidate, hidden)
    except BaseException:
        # Interrupted or failed: the registry still names the active version, so serve it.
        _switch_to(settings, profile, manifest, active, hidden)
        raise
    return judge(metric, before, after, max_drop), True


@models_app.command("activate")
@friendly
def models_activate(
    version: Annotated[str, typer.Argument(help="The version to serve (see `models list`).")],
    gold: Annotated[
        Path | None,
        typer.Option(help="Gold set for the quality gate (models.gate_gold)."),
    ] = None,
    max_drop: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Largest allowed drop of the gate's metric (models.gate_max_drop).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            help="Activate even when the gate refuses or has no gold set (audited as forced)."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Serve VERSION, if the gold set's answers on it are no worse than on the active one.

    Restarts vLLM on it. Refused (exit 1) when the gate's metric drops more than allowed;
    every activation, refusal and forced switch is audited with who did it.
    """
    from appliance.evaluation.gold import load_gold
    from models.inference_server import InferenceStartFailed
    from models.preflight import preflight

    settings = cli_settings()
    profile, manifest, registry = _lifecycle(settings)
    manifest.verify(version)
    active = registry.active(profile.model)
    if version == active:
        console.print(f"{version} is already the active version of {profile.model}")
        return
    gold_file = gold or settings.models.gate_gold
    if gold_file is None and not force:
        errors.print(
            "[bold red]error:[/] no gold set to gate the switch with: pass --gold FILE or set "
            "models.gate_gold (or --force to switch unmeasured, audited as forced)"
        )
        raise typer.Exit(2)
    questions = load_gold(gold_file) if gold_file else None
    allowed = settings.models.gate_max_drop if max_drop is None else max_drop
    started = time.perf_counter()
    payload: dict[str, Any] = {
        "served_name": profile.model,
        "version": version,
        "previous": active,
        "version_sha256": manifest.get(version).digest(),
        "previous_sha256": manifest.get(active).digest() if active in manifest.entries() else None,
        "gold": str(gold_file) if gold_file else None,
        "forced": force,
    }
    verdict, candidate_running = None, False
    try:
        # What this host cannot run is refused before the active version is stopped.
        preflight(profile, manifest.get(version).quantization)
        if questions:
            verdict, candidate_running = _gate(
                settings, profile, manifest, active, version, questions, allowed, as_json
            )
    except InferenceStartFailed as error:
        _audit(settings, "model_activation_refused", {**payload, "gate": str(error)})
        raise
    payload["gate"] = verdict.to_dict() if verdict else "skipped: no gold set"
    if verdict and not verdict.passed and not force:
        if candidate_running:
            _switch_to(settings, profile, manifest, active, as_json)
        _audit(settings, "model_activation_refused", payload)
        if as_json:
            print_json({**payload, "activated": False})
        else:
            errors.print(f"[bold red]refused:[/] {verdict.reason}; {active} stays active")
            errors.print("pass --force to activate it anyway (audited as forced)")
        raise typer.Exit(1)
    if not candidate_running:
        try:
            _switch_to(settings, profile, manifest, version, as_json)
        except InferenceStartFailed as error:
            # A forced switch to a version that cannot start is on record too, with the reason.
            _audit(settings, "model_activation_failed", {**payload, "error": str(error)})
            raise
    registry.activate(profile.model, version, local_user().user, forced=force)
    _audit(settings, "model_activated", payload)
    seconds = time.perf_counter() - started
    if as_json:
        print_json({**payload, "activated": True, "seconds": round(seconds, 1)})
        return
    gate = verdict.reason if verdict else "no gate: no gold set"
    forced = " (forced)" if force else ""
    console.print(
        f"{version} is now active{forced}: vLLM serves it as {profile.model} "
        f"({gate}); {seconds:.0f} s. Undo: `appliance models rollback`"
    )


@models_app.command("rollback")
@friendly
def models_rollback(as_json: JsonOption = False) -> None:
    """Serve the version that was active before the current one again (no gate); audited."""
    settings = cli_settings()
    profile, manifest, registry = _lifecycle(settings)
    target = registry.previous(profile.model)
    current = registry.active(profile.model)
    running = _switch_to(settings, profile, manifest, target, as_json)
    switch = registry.rollback(profile.model, local_user().user)
    payload = {
        "served_name": profile.model,
        "version": target,
        "previous": current,
        "version_sha256": manifest.get(target).digest(),
    }
    _audit(settings, "model_rolled_back", payload)
    if as_json:
        print_json({**payload, "seconds_to_ready": round(running.seconds_to_ready, 1)})
        return
    console.print(
        f"rolled back: {switch.previous} -> {switch.version}, served as {profile.model} "
        f"(ready in {running.seconds_to_ready:.0f} s)"
    )


@models_app.command("serve")
@friendly
def models_serve(
    profile: Annotated[str | None, typer.Option(help="Launch profile (inference.profile).")] = None,
    foreground: Annotated[
        bool, typer.Option(help="Become vLLM after the check (systemd, Docker): no pid file.")
    ] = False,
    print_command: Annotated[
        bool, typer.Option(help="Print vLLM's command line, one argument a line; start nothing.")
    ] = False,
) -> None:
    """Start vLLM on the active version after checking its files against the manifest."""
    from models.profiles import load_profile

    settings = cli_settings()
    _, manifest, registry = _lifecycle(settings)
    launch = load_profile(profile or settings.inference.profile)
    version = registry.active(launch.model)
    if print_command:
        from appliance.cli.inference_exec import inference_command

        for argument in inference_command(settings, launch.name, version):
            print(argument)
        return
    if foreground:
        from appliance.cli.inference_exec import exec_inference

        exec_inference(settings, launch.name, version)
    server = _inference_server(settings)
    with console.status(f"starting vLLM ({launch.name}, {version}); the log is {server.log_file}"):
        running = server.start(launch, manifest, settings.inference.start_timeout_s, version)
    state = (
        "already running"
        if running.already_running
        else f"ready in {running.seconds_to_ready:.1f} s"
    )
    console.print(
        f"vLLM {state}: {running.model} from version {version} at {running.url} "
        f"(pid {running.pid}, log {running.log})"
    )


@models_app.command("stop")
@friendly
def models_stop() -> None:
    """Stop the vLLM server started by `appliance models serve`."""
    stopped = _inference_server(cli_settings()).stop()
    console.print("vLLM stopped" if stopped else "vLLM was not running")


@models_app.command("status")
@friendly
def models_status(as_json: JsonOption = False) -> None:
    """Show the prepared models, whether their files match the manifest, and what is served."""
    from models.inference_server import answering_models
    from models.manifest import ModelIntegrityError

    settings = cli_settings()
    profile, manifest, registry = _lifecycle(settings)
    active = registry.active(profile.model)
    rows = []
    for name, entry in manifest.entries().items():
        try:
            manifest.verify(name)
            integrity = "ok"
        except ModelIntegrityError as error:
            integrity = str(error)
        rows.append(
            {
                "name": name,
                "quantization": entry.quantization,
                "integrity": integrity,
                "active": name == active,
            }
        )
    served = answering_models(settings.inference.host, settings.inference.port)
    running_version = _inference_server(settings).version()
    if as_json:
        print_json({"models": rows, "served": served, "running_version": running_version})
        return
    for row in rows:
        mark = ", active" if row["active"] else ""
        console.print(f"{row['name']} ({row['quantization']}{mark}): {row['integrity']}")
    console.print(
        f"served now: {served if served is not None else 'nothing (vLLM is not running)'}"
        + (f" from version {running_version}" if running_version else "")
    )
