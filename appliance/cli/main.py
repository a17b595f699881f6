"""The `appliance` command: ingest documents, ask and search them, serve the API, run the model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from appliance.cli.bundle_cmd import bundle_app
from appliance.cli.common import (
    JsonOption,
    cli_settings,
    console,
    errors,
    friendly,
    local_user,
    log_to_stderr,
    print_json,
    progress_bar,
)
from appliance.cli.models_cmd import models_app
from appliance.container import Components
from appliance.domain import DocumentAccess, Hit
from appliance.settings import Settings, SettingsError

if TYPE_CHECKING:
    from ingest.job_store import Job
    from ingest.jobs import IngestJobs

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
app.add_typer(models_app, name="models")
app.add_typer(bundle_app, name="bundle")

TopK = Annotated[int | None, typer.Option("--top-k", "-k", help="How many passages to retrieve.")]
CollectionsOption = Annotated[
    list[str] | None,
    typer.Option("--collection", "-c", help="Search only this collection (repeatable)."),
]


GroupsOption = Annotated[
    str | None,
    typer.Option(help="Comma-separated groups that may read these documents (default: settings)."),
]
CollectionOption = Annotated[
    str | None, typer.Option(help="The collection they belong to (default: settings).")
]


def _where(hit: Hit) -> str:
    if hit.page is not None:
        return f"page {hit.page}"
    return f"section '{hit.section}'" if hit.section else ""


# ---------------------------------------------------------------- documents

WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Follow the job with a progress bar until it is done (queued mode).",
    ),
]


def _ingest_jobs(settings: Settings) -> IngestJobs:
    # Imported here: `appliance` core never imports `ingest`; the CLI is where they meet.
    from ingest.jobs import build_ingest_jobs

    # Inline work runs on a background thread so this thread can draw the progress bar.
    return build_ingest_jobs(Components(settings), background=True)


def _follow(jobs: IngestJobs, job_id: str, wait: bool, as_json: bool) -> None:
    """Draws the job's progress until it is done, then prints its summary."""
    import time

    job = jobs.store.get(job_id)
    inline = jobs.settings.ingest.mode == "inline"
    if not (wait or inline):
        if as_json:
            print_json(job.to_dict())
        else:
            console.print(
                f"job {job_id} queued: {job.files_total} files (`appliance jobs {job_id}`)"
            )
        return
    with progress_bar(f"job {job_id}", job.files_total, as_json) as advance:
        while job.status != "done":
            time.sleep(0.2)
            job = jobs.store.get(job_id)
            advance(job.files_done, job.files_total)
    seconds = max(item.updated_at for item in job.files) - job.created_at if job.files else 0.0
    if as_json:
        print_json({**job.to_dict(), "seconds": round(seconds, 3), **_counts(job)})
    else:
        for item in job.files:
            if item.status == "failed":
                errors.print(f"[red]failed[/] {item.path}: {item.error}")
        counts = _counts(job)
        console.print(
            f"job {job_id}: {job.files_total} files: {counts['indexed']} indexed, "
            f"{counts['unchanged']} unchanged, {counts['deleted']} deleted, "
            f"{counts['failed']} failed; {job.chunks_written} chunks written in {seconds:.1f} s "
            f"into {jobs.settings.data_dir}"
        )
    if job.count("failed"):
        raise typer.Exit(1)


def _counts(job: Job) -> dict[str, int]:
    statuses = ("indexed", "unchanged", "deleted", "failed")
    return {status: job.count(status) for status in statuses} | {"chunks": job.chunks_written}


@app.command()
@friendly
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (searched recursively).")],
    groups: GroupsOption = None,
    collection: CollectionOption = None,
    wait: WaitOption = True,
    as_json: JsonOption = False,
) -> None:
    """Index documents (md, txt, html, pdf, docx). Unchanged files are skipped."""
    from appliance.auth.keys import check_groups

    settings = cli_settings()
    jobs = _ingest_jobs(settings)
    access = None
    if groups or collection:
        access = DocumentAccess(
            check_groups(groups.split(",")) if groups else tuple(settings.access.default_groups),
            collection or settings.access.default_collection,
        )
    job = jobs.submit_paths(paths, access, local_user().user)
    _follow(jobs, job.job_id, wait, as_json)


@app.command()
@friendly
def sync(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders to sync (default: every registered source)."),
    ] = None,
    wait: WaitOption = True,
    as_json: JsonOption = False,
) -> None:
    """Bring the index in line with folders: ingest new and changed files, drop removed ones."""
    jobs = _ingest_jobs(cli_settings())
    targets = folders or [Path(source.path) for source in jobs.store.sources()]
    if not targets:
        raise typer.BadParameter(
            "no folder given and no source registered (`appliance sources add`)"
        )
    for folder in targets:
        _follow(jobs, jobs.sync(folder, local_user().user).job_id, wait, as_json)


@app.command()
@friendly
def retry(wait: WaitOption = True, as_json: JsonOption = False) -> None:
    """Ingest again every document whose last attempt failed."""
    jobs = _ingest_jobs(cli_settings())
    job = jobs.retry_failed(local_user().user)
    if job is None:
        console.print("no failed documents to retry")
        return
    _follow(jobs, job.job_id, wait, as_json)


@app.command("jobs")
@friendly
def list_jobs(
    job_id: Annotated[str | None, typer.Argument(help="Show this job's files.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List recent ingest jobs, or one job's files with their status and errors."""
    from ingest.job_store import JobStore

    store = JobStore.for_settings(cli_settings())
    if job_id:
        job = store.get(job_id)
        if job is None:
            raise typer.BadParameter(f"no job {job_id}")
        if as_json:
            print_json(job.to_dict())
            return
        table = Table("#", "status", "chunks", "path", "error")
        for item in job.files:
            table.add_row(str(item.n), item.status, str(item.chunks), item.path, item.error or "")
        console.print(table)
        return
    found = store.list()
    if as_json:
        print_json([job.to_dict(with_files=False) for job in found])
        return
    table = Table("job", "kind", "status", "files", "failed", "chunks")
    for job in found:
        table.add_row(
            job.job_id,
            job.kind,
            job.status,
            f"{job.files_done}/{job.files_total}",
            str(job.count("failed")),
            str(job.chunks_written),
        )
    console.print(table)


sources_app = typer.Typer(help="Register folders whose documents `appliance sync` keeps indexed.")
app.add_typer(sources_app, name="sources")


@sources_app.command("add")
@friendly
def sources_add(folder: Path) -> None:
    """Register a folder as a source."""
    source = _ingest_jobs(cli_settings()).add_source(folder)
    console.print(f"source {source.source_id}: {source.path} (sync it with `appliance sync`)")


@sources_app.command("list")
@friendly
def sources_list() -> None:
    """List registered source folders."""
    from ingest.job_store import JobStore

    for source in JobStore.for_settings(cli_settings()).sources():
        console.print(f"{source.source_id}  {source.path}")


@app.command()
@friendly
def delete(path_or_id: Annotated[str, typer.Argument(help="A document's path or id.")]) -> None:
    """Remove a document and all its chunks from the index."""
    from ingest.service import IngestService

    service = IngestService.for_components(Components(cli_settings()))
    doc_id = service.delete(path_or_id)
    service.record("delete", local_user().user, {"path": path_or_id, "doc_id": doc_id})
    console.print(f"deleted document {doc_id} ({path_or_id}) and its chunks")


@app.command()
@friendly
def documents(as_json: JsonOption = False) -> None:
    """List indexed documents with their status, chunk counts and errors."""
    from ingest.catalog import Catalog

    records = Catalog.for_settings(cli_settings()).list()
    if as_json:
        print_json([record.to_dict() for record in records])
        return
    table = Table("status", "chunks", "groups", "collection", "path", "error")
    for record in records:
        table.add_row(
            record.status,
            str(record.chunks),
            ",".join(record.groups),
            record.collection,
            record.path,
            record.error or "",
        )
    console.print(table)


@app.command()
@friendly
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Overrides worker.concurrency.")] = None,
    name: Annotated[str | None, typer.Option(help="Worker name (default ingest@HOST).")] = None,
) -> None:
    """Run an ingestion worker: takes queued documents from Redis (ingest.mode: celery)."""
    settings = cli_settings()
    log_to_stderr(settings, "worker")
    if settings.worker.metrics_port:
        import os

        from appliance.observability.worker_metrics import export_worker_metrics

        # One folder per worker process tree: several workers may share a machine.
        folder = settings.run_dir / "worker-metrics" / str(os.getpid())
        export_worker_metrics(settings.worker.metrics_host, settings.worker.metrics_port, folder)
    from ingest.tasks import celery_app

    celery_app.worker_main(
        [
            "worker",
            "--loglevel=INFO",
            "--pool=prefork",
            f"--concurrency={concurrency or settings.worker.concurrency}",
            "--queues=ingest",
            f"--hostname={name or 'ingest@%h'}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


# ---------------------------------------------------------------- questions


@app.command()
@friendly
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    top_k: TopK = None,
    collection: CollectionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the passages that best match QUERY, best first (no generation)."""
    hits = Components(cli_settings()).answers.search(query, local_user(), top_k, collection)
    if as_json:
        print_json({"query": query, "hits": [hit.to_dict() for hit in hits]})
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
    collection: CollectionsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer QUESTION from the indexed documents, streaming, then list the numbered sources."""
    stream = Components(cli_settings()).answers.stream(question, local_user(), top_k, collection)
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
        print_json(answer.to_dict())
        return
    if answer.mode == "extract" and not answer.abstained:
        console.print("[dim]Quoted from the documents (no language model wrote this answer).[/]")
    claims = ", ".join(f"“{claim['text']}”" for claim in answer.unsupported_claims)
    if claims and answer.claim_check != "replace":
        console.print(
            f"[yellow]⚠ Not in any source: {claims}. Check them before you rely on them.[/]"
        )
    title = "Nearest passages" if answer.abstained else "Sources"
    console.print(f"\n[bold]{title}[/] (* = cited in the answer, ! = cited but unsupported)")
    for citation in answer.citations:
        hit = citation.hit
        mark = "!" if citation.supported is False else "*" if citation.cited else " "
        where = f", {_where(hit)}" if _where(hit) else ""
        console.print(f" {mark}[{citation.number}] {hit.path}{where}  (score {hit.score:.3f})")
    if answer.seconds_to_first_token is not None:
        console.print(
            f"[dim]first token after {answer.seconds_to_first_token:.2f} s, "
            f"done in {answer.seconds_total:.2f} s ({answer.model})[/]"
        )


@app.command("eval")
@friendly
def evaluate(
    gold_file: Annotated[
        Path,
        typer.Argument(
            help='JSON lines: {"question", "expected_source", optional "expected_answer"}.'
        ),
    ],
    retrieval_only: Annotated[
        bool, typer.Option("--retrieval-only", help="Measure retrieval alone (no LLM).")
    ] = False,
    compare: Annotated[
        str | None,
        typer.Option(help="Retrieval modes side by side, e.g. dense,bm25,hybrid."),
    ] = None,
    minimum: Annotated[
        list[str] | None,
        typer.Option(
            "--min",
            help="METRIC=VALUE (repeatable): exit 1 when the first mode's metric is below it.",
        ),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Passages ranked.")] = 10,
    answer_mode: Annotated[
        str | None,
        typer.Option(
            "--answer-mode",
            help="Answering modes side by side, e.g. generate,extract (default: the settings').",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Score retrieval (hit@1, hit@5, MRR, nDCG@10) and answers against a gold set."""
    from appliance.evaluation.gold import load_gold
    from appliance.evaluation.runner import (
        ANSWER_MODES,
        METRICS,
        MODES,
        gate,
        parse_threshold,
        runs_for_modes,
    )

    try:
        thresholds = [parse_threshold(text) for text in minimum or []]
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--min") from None
    settings = cli_settings()
    modes = [mode.strip() for mode in compare.split(",")] if compare else []
    modes = [mode for mode in modes if mode] or [settings.retrieval.mode]
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        raise typer.BadParameter(
            f"{', '.join(unknown)}: the modes are {', '.join(MODES)}", param_hint="--compare"
        )
    answer_modes = [mode.strip() for mode in (answer_mode or "").split(",") if mode.strip()]
    wrong = [mode for mode in answer_modes if mode not in ANSWER_MODES]
    if wrong:
        raise typer.BadParameter(
            f"{', '.join(wrong)}: the answering modes are {', '.join(ANSWER_MODES)}",
            param_hint="--answer-mode",
        )
    gold = load_gold(gold_file)
    runs_total = len(modes) * max(1, len(answer_modes))
    with progress_bar(f"{len(gold)} questions", len(gold) * runs_total, as_json) as advance:
        runs = list(
            runs_for_modes(
                settings,
                gold,
                modes,
                local_user(),
                not retrieval_only,
                top_k,
                advance,
                answer_modes if not retrieval_only else (),
            )
        )
    failures = gate(runs[0].metrics(), thresholds)
    if as_json:
        print_json(
            {
                "gold": str(gold_file),
                "questions": len(gold),
                "runs": [run.to_dict() for run in runs],
                "gate": {"passed": not failures, "failures": failures},
            }
        )
    else:
        table = Table("metric", *(run.label for run in runs))
        measured = [run.metrics() for run in runs]
        for name in METRICS:
            digits = 0 if name.endswith("_ms") else 3
            values = [scores[name] for scores in measured]
            table.add_row(name, *("-" if v is None else f"{v:.{digits}f}" for v in values))
        console.print(table)
        answered = (
            "retrieval only"
            if retrieval_only
            else f"answers ({settings.answering.mode} unless named) by {settings.llm.model}"
        )
        console.print(
            f"{len(gold)} questions from {gold_file}, top {top_k} passages, {answered}, "
            f"data in {settings.data_dir}"
        )
        for failure in failures:
            errors.print(f"[bold red]below the minimum:[/] {runs[0].label}: {failure}")
    if failures:
        raise typer.Exit(1)


# ---------------------------------------------------------------- API keys

keys_app = typer.Typer(
    help="API keys for the web page, the API and the OpenAI-compatible endpoint.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
@friendly
def keys_create(
    user: Annotated[str, typer.Option(help="Who the key belongs to (shown in the audit log).")],
    role: Annotated[str, typer.Option(help="reader | admin | auditor")] = "reader",
    groups: Annotated[
        str, typer.Option(help="Comma-separated groups whose documents the key may read.")
    ] = "everyone",
    as_json: JsonOption = False,
) -> None:
    """Create a key; its secret is printed this once and stored only as an argon2 hash."""
    components = Components(cli_settings())
    creator = local_user().user
    key, token = components.keys.create(user, role, [g for g in groups.split(",") if g], creator)
    components.audit.append("key_created", creator, [], key.to_dict())
    if as_json:
        print_json({**key.to_dict(), "token": token})
        return
    console.print(
        f"created {key.role} key {key.key_id} for {key.user} (groups {', '.join(key.groups)})"
    )
    console.print("the key, shown only now:")
    print(token)


@keys_app.command("list")
@friendly
def keys_list(as_json: JsonOption = False) -> None:
    """List keys (never their secrets)."""
    keys = Components(cli_settings()).keys.list()
    if as_json:
        print_json([key.to_dict() for key in keys])
        return
    table = Table("key id", "user", "role", "groups", "state")
    for key in keys:
        state = "active" if key.active else "revoked"
        table.add_row(key.key_id, key.user, key.role, ",".join(key.groups), state)
    console.print(table)


@keys_app.command("revoke")
@friendly
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`).")],
) -> None:
    """Revoke a key: every later request with it is refused."""
    components = Components(cli_settings())
    key = components.keys.revoke(key_id)
    components.audit.append("key_revoked", local_user().user, [], key.to_dict())
    console.print(f"revoked key {key.key_id} of {key.user}")


@app.command()
@friendly
def serve(
    host: Annotated[str | None, typer.Option(help="Overrides server.host.")] = None,
    port: Annotated[int | None, typer.Option(help="Overrides server.port.")] = None,
) -> None:
    """Run the HTTP API (POST /v1/query, GET /healthz)."""
    import uvicorn

    from appliance.server.app import create_app

    settings = cli_settings()
    log_to_stderr(settings, "api")
    uvicorn.run(
        create_app(settings),
        host=host or settings.server.host,
        port=port or settings.server.port,
        # uvloop resolves and connects in native code, out of the egress guard's sight.
        loop="asyncio",
        log_config=None,  # ours: JSON lines with the request id (logging.format)
    )


# ---------------------------------------------------------------- checks


@app.command()
@friendly
def doctor(
    egress: Annotated[
        bool,
        typer.Option(
            "--egress", help="Only what this process may connect to, and what it refused."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Check every component (settings, Redis, workers, Chroma, inference and its model, audit
    chain, egress, disk) and say what to do about each failure; exits 1 if one fails."""
    from appliance.cli.doctor import print_reports, run_checks, settings_failure

    try:
        reports = run_checks(cli_settings(), ["egress"] if egress else None)
    except SettingsError as error:
        reports = [settings_failure(error)]
    if as_json:
        print_json([report.to_dict() for report in reports])
    else:
        print_reports(reports, console, details=egress)
    if not all(report.ok for report in reports):
        raise typer.Exit(1)


# ---------------------------------------------------------------- audit

audit_app = typer.Typer(
    help="Verify, search, export and purge the tamper-evident audit log.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")
PeriodStart = Annotated[str | None, typer.Option(help="From this day or date-time, UTC.")]
PeriodEnd = Annotated[
    str | None, typer.Option(help="To this day, included (a date-time is excluded), UTC.")
]


def _audit_where(settings: Settings) -> str:
    """Where the log is, for messages; a PostgreSQL URL's password is not shown."""
    if not settings.audit.url:
        return str(settings.audit_path)
    from sqlalchemy import make_url

    return make_url(settings.audit.url).render_as_string(hide_password=True)


def _period(start: str | None, end: str | None, options: str) -> tuple[Any, Any]:
    from appliance.audit.record import time_bound

    try:
        return (
            time_bound(start) if start else None,
            time_bound(end, end=True) if end else None,
        )
    except ValueError:
        raise typer.BadParameter(
            "give a date (2026-11-30) or a date-time (2026-11-30T14:00)", param_hint=options
        ) from None


@audit_app.command("verify")
@friendly
def audit_verify(as_json: JsonOption = False) -> None:
    """Check every record's hash and signature, the chain, the signed head and the checkpoints.

    Exits 1 with a table of what was edited, deleted, reordered, forged or cut off, by seq.
    """
    import time

    from appliance.audit.log import AuditLog

    settings = cli_settings()
    started = time.monotonic()
    report = AuditLog.for_settings(settings).verify()
    seconds = time.monotonic() - started
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        span = f" (seq {report.first_seq} to {report.last_seq})" if report.checked else ""
        kept = (
            f", kept since the retention checkpoint at seq {report.checkpoint_seq}"
            if report.checkpoint_seq is not None
            else ""
        )
        console.print(
            f"audit log intact: {report.checked} records checked{span}, signed head at seq "
            f"{report.head_seq}{kept}; {_audit_where(settings)}, {seconds:.1f} s"
        )
    else:
        table = Table("seq", "problem", "what happened")
        for problem in report.problems:
            table.add_row(str(problem.seq), problem.kind, problem.message)
        console.print(table)
        errors.print(
            f"[bold red]audit log tampered with:[/] {len(report.problems)} problem(s) in "
            f"{report.checked} records ({_audit_where(settings)})"
        )
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("export")
@friendly
def audit_export(
    start: Annotated[
        str | None, typer.Option("--from", help="First day (or date-time), UTC.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last day, included (a date-time is excluded), UTC.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    out: Annotated[
        Path | None, typer.Option(help="Write to this file (mode 600) instead of stdout.")
    ] = None,
) -> None:
    """Write records with their hashes and signatures, for an auditor or an archive."""
    import os
    import time

    from appliance.audit.log import AuditLog

    if fmt not in ("jsonl", "csv"):
        raise typer.BadParameter(f"{fmt!r} is not jsonl or csv", param_hint="--format")
    since, until = _period(start, end, "--from/--to")
    settings = cli_settings()
    log = AuditLog.for_settings(settings)
    started = time.monotonic()
    if out is None:
        count = log.export(sys.stdout, since, until, fmt)  # type: ignore[arg-type]
    else:
        # Questions and answers are in there: readable by whoever ran the export only.
        handle = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(handle, "w", encoding="utf-8", newline="") as stream:
            count = log.export(stream, since, until, fmt)  # type: ignore[arg-type]
    errors.print(
        f"exported {count} records from {start or 'the start'} to {end or 'now'} as {fmt} "
        f"to {out or 'stdout'} from {_audit_where(settings)} in {time.monotonic() - started:.1f} s"
    )


@audit_app.command("purge")
@friendly
def audit_purge(
    older_than_days: Annotated[
        int | None, typer.Option(min=1, help="Default: audit.retention_days.")
    ] = None,
) -> None:
    """Delete records older than the retention period; what remains still verifies."""
    import getpass
    from datetime import UTC, datetime, timedelta

    from appliance.audit.log import AuditLog

    settings = cli_settings()
    days = older_than_days or settings.audit.retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    purged = AuditLog.for_settings(settings).purge(cutoff, actor=f"local:{getpass.getuser()}")
    before = f"older than {days} days (before {cutoff:%Y-%m-%d %H:%M} UTC)"
    if purged:
        console.print(
            f"purged {purged} records {before} from {_audit_where(settings)}; "
            "a signed checkpoint keeps the rest verifiable"
        )
    else:
        console.print(f"no records {before}: nothing purged")


@audit_app.command("search")
@friendly
def audit_search(
    user: Annotated[str | None, typer.Option(help="The user records are attributed to.")] = None,
    kind: Annotated[
        str | None, typer.Option(help="query, ingest, delete, key_created, egress, ...")
    ] = None,
    doc: Annotated[
        str | None, typer.Option(help="A document id the record names (asked, ingested...).")
    ] = None,
    since: PeriodStart = None,
    until: PeriodEnd = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, the newest.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Find audit records by user, kind, document and time, oldest first."""
    from appliance.audit.log import AuditLog

    start, end = _period(since, until, "--since/--until")
    records = AuditLog.for_settings(cli_settings()).records(
        since=start, until=end, actor=user, kind=kind, doc_id=doc, limit=limit
    )
    if as_json:
        print_json([record.to_dict() for record in records])
        return
    table = Table("seq", "at (UTC)", "kind", "user", "payload")
    for record in records:
        payload = json.dumps(record.payload, ensure_ascii=False)
        shown = payload if len(payload) <= 100 else payload[:99] + "…"
        at = record.at[:19].replace("T", " ")
        table.add_row(str(record.seq), at, record.kind, record.actor, shown)
    console.print(table)
    errors.print(f"{len(records)} records")


def main() -> None:
    app()
