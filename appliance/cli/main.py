"""The `appliance` command: ingest documents, ask and search them, serve the API, run the model."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from appliance.container import Components
from appliance.domain import Hit
from appliance.errors import ApplianceError
from appliance.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    help=(
        "On-prem RAG appliance: index your documents, then ask questions and get answers with "
        "numbered citations. Nothing leaves this machine.\n\n"
        "First time: `appliance models prepare`, `appliance models serve`, "
        '`appliance ingest FOLDER`, `appliance ask "QUESTION"`.'
    ),
    no_args_is_help=True,
    add_completion=False,
)
models_app = typer.Typer(
    help="Prepare, start and stop the local inference service (vLLM).", no_args_is_help=True
)
app.add_typer(models_app, name="models")

console = Console()
errors = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]
TopK = Annotated[int | None, typer.Option("--top-k", "-k", help="How many passages to retrieve.")]


def _user_errors() -> tuple[type[Exception], ...]:
    from models.inference_server import InferenceStartFailed
    from models.manifest import ModelIntegrityError, ModelNotPrepared

    return (
        ApplianceError,
        SettingsError,
        ModelIntegrityError,
        ModelNotPrepared,
        InferenceStartFailed,
        FileNotFoundError,
    )


def friendly(command: F) -> F:
    """A user-facing failure prints one clear sentence and exits 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except _user_errors() as error:
            errors.print(f"[bold red]error:[/] {getattr(error, 'message', None) or error}")
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    return load_settings()


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _where(hit: Hit) -> str:
    if hit.page is not None:
        return f"page {hit.page}"
    return f"section '{hit.section}'" if hit.section else ""


# ---------------------------------------------------------------- documents


def _ingest_service(settings: Settings):
    # Imported here: `appliance` core never imports `ingest`; the CLI is where they meet.
    from ingest.catalog import Catalog
    from ingest.service import IngestService

    components = Components(settings)
    return IngestService(
        settings, components.embedder, components.chunk_store, Catalog(settings.catalog_path)
    )


@app.command()
@friendly
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (searched recursively).")],
    as_json: JsonOption = False,
) -> None:
    """Index documents (md, txt, html, pdf, docx). Unchanged files are skipped."""
    from ingest.service import expand_paths

    settings = _settings()
    service = _ingest_service(settings)
    files = expand_paths(paths)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=errors, disable=as_json) as progress:
        task = progress.add_task("ingesting", total=len(files))
        report = service.ingest(
            files,
            on_file=lambda outcome: progress.update(
                task, advance=1, description=Path(outcome.path).name
            ),
        )
    if as_json:
        _print_json(
            {
                "files": [outcome.__dict__ for outcome in report.outcomes],
                "indexed": report.count("indexed"),
                "unchanged": report.count("unchanged"),
                "failed": report.count("failed"),
                "chunks": report.chunks_written,
                "seconds": round(report.seconds, 3),
            }
        )
    else:
        for outcome in report.outcomes:
            if outcome.status == "failed":
                errors.print(f"[red]failed[/] {outcome.path}: {outcome.error}")
        console.print(
            f"{len(report.outcomes)} files: {report.count('indexed')} indexed, "
            f"{report.count('unchanged')} unchanged, {report.count('failed')} failed; "
            f"{report.chunks_written} chunks written in {report.seconds:.1f} s "
            f"into {settings.data_dir}"
        )
    if report.count("failed"):
        raise typer.Exit(1)


@app.command()
@friendly
def delete(path_or_id: Annotated[str, typer.Argument(help="A document's path or id.")]) -> None:
    """Remove a document and all its chunks from the index."""
    doc_id = _ingest_service(_settings()).delete(path_or_id)
    console.print(f"deleted document {doc_id} ({path_or_id}) and its chunks")


@app.command()
@friendly
def documents(as_json: JsonOption = False) -> None:
    """List indexed documents with their status, chunk counts and errors."""
    from ingest.catalog import Catalog

    records = Catalog(_settings().catalog_path).list()
    if as_json:
        _print_json([record.__dict__ for record in records])
        return
    table = Table("status", "chunks", "path", "error")
    for record in records:
        table.add_row(record.status, str(record.chunks), record.path, record.error or "")
    console.print(table)


# ---------------------------------------------------------------- questions


@app.command()
@friendly
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    top_k: TopK = None,
    as_json: JsonOption = False,
) -> None:
    """Show the passages that best match QUERY, best first (no generation)."""
    hits = Components(_settings()).answers.search(query, top_k)
    if as_json:
        _print_json({"query": query, "hits": [hit.to_dict() for hit in hits]})
        return
    table = Table("#", "score", "file", "where", "text")
    for number, hit in enumerate(hits, 1):
        snippet = hit.text.replace("\n", " ")[:100]
        table.add_row(str(number), f"{hit.score:.3f}", hit.path, _where(hit), snippet)
    console.print(table)


@app.command()
@friendly
def ask(
    question: Annotated[str, typer.Argument(help="Your question, in quotes.")],
    top_k: TopK = None,
    as_json: JsonOption = False,
) -> None:
    """Answer QUESTION from the indexed documents, streaming, then list the numbered sources."""
    stream = Components(_settings()).answers.stream(question, top_k)
    if as_json:
        for _ in stream:
            pass
    else:
        for delta in stream:
            sys.stdout.write(delta)
            sys.stdout.flush()
        sys.stdout.write("\n")
    answer = stream.answer
    assert answer is not None
    if as_json:
        _print_json(answer.to_dict())
        return
    console.print("\n[bold]Sources[/] (* = cited in the answer)")
    for citation in answer.citations:
        hit = citation.hit
        mark = "*" if citation.cited else " "
        where = f", {_where(hit)}" if _where(hit) else ""
        console.print(f" {mark}[{citation.number}] {hit.path}{where}  (score {hit.score:.3f})")
    if answer.seconds_to_first_token is not None:
        console.print(
            f"[dim]first token after {answer.seconds_to_first_token:.2f} s, "
            f"done in {answer.seconds_total:.2f} s ({answer.model})[/]"
        )


@app.command()
@friendly
def serve(
    host: Annotated[str | None, typer.Option(help="Overrides server.host.")] = None,
    port: Annotated[int | None, typer.Option(help="Overrides server.port.")] = None,
) -> None:
    """Run the HTTP API (POST /v1/query, GET /healthz)."""
    import uvicorn

    from appliance.server.app import create_app

    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.server.host,
        port=port or settings.server.port,
    )


# ---------------------------------------------------------------- models


def _inference_server(settings: Settings):
    from models.inference_server import InferenceServer

    inference = settings.inference
    return InferenceServer(
        inference.python, inference.host, inference.port, settings.run_dir, settings.logs_dir
    )


@models_app.command("prepare")
@friendly
def models_prepare(
    force: Annotated[bool, typer.Option(help="Rebuild even if a valid model is there.")] = False,
) -> None:
    """Build the default CPU model (SmolLM2-135M-Instruct) from the bundled GGUF, with hashes."""
    from models.prepare import prepare_smollm2

    settings = _settings()
    with console.status("converting the GGUF model to a folder vLLM can load"):
        entry, built = prepare_smollm2(settings.models.smollm2_wheel, settings.models_dir, force)
    size = sum(item.bytes for item in entry.files) / 2**20
    verb = "prepared" if built else "already prepared (hashes match)"
    console.print(
        f"{entry.name} {verb}: {len(entry.files)} files, {size:.0f} MB in "
        f"{settings.models_dir / entry.name}, manifest hash {entry.digest()[:16]}"
    )


@models_app.command("serve")
@friendly
def models_serve(
    profile: Annotated[str | None, typer.Option(help="Launch profile (inference.profile).")] = None,
) -> None:
    """Start vLLM for a launch profile after checking the model against its manifest."""
    from models.manifest import Manifest
    from models.profiles import load_profile

    settings = _settings()
    launch = load_profile(profile or settings.inference.profile)
    server = _inference_server(settings)
    with console.status(f"starting vLLM ({launch.name}); the log is {server.log_file}"):
        running = server.start(
            launch, Manifest(settings.models_dir), settings.inference.start_timeout_s
        )
    state = (
        "already running"
        if running.already_running
        else f"ready in {running.seconds_to_ready:.1f} s"
    )
    console.print(
        f"vLLM {state}: {running.model} at {running.url} (pid {running.pid}, log {running.log})"
    )


@models_app.command("stop")
@friendly
def models_stop() -> None:
    """Stop the vLLM server started by `appliance models serve`."""
    stopped = _inference_server(_settings()).stop()
    console.print("vLLM stopped" if stopped else "vLLM was not running")


@models_app.command("status")
@friendly
def models_status(as_json: JsonOption = False) -> None:
    """Show the prepared models, whether their files match the manifest, and what is served."""
    from models.inference_server import answering_models
    from models.manifest import Manifest, ModelIntegrityError

    settings = _settings()
    manifest = Manifest(settings.models_dir)
    rows = []
    for name, entry in manifest.entries().items():
        try:
            manifest.verify(name)
            integrity = "ok"
        except ModelIntegrityError as error:
            integrity = str(error)
        rows.append({"name": name, "quantization": entry.quantization, "integrity": integrity})
    served = answering_models(settings.inference.host, settings.inference.port)
    if as_json:
        _print_json({"models": rows, "served": served})
        return
    for row in rows:
        console.print(f"{row['name']} ({row['quantization']}): {row['integrity']}")
    console.print(
        f"served now: {served if served is not None else 'nothing (vLLM is not running)'}"
    )


def main() -> None:
    app()
