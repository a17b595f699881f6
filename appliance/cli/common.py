"""What every `appliance` command group shares: the consoles, settings under the egress guard,
the local user, JSON output, error handling and the progress bar.

Command groups (main.py, models_cmd.py, bundle_cmd.py, doctor.py) import from here and never
from each other, so there is no import cycle and each group can be read on its own.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from appliance.auth.principal import Principal
from appliance.errors import ApplianceError
from appliance.settings import Settings, SettingsError, load_settings

console = Console()
errors = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]


def _user_errors() -> tuple[type[Exception], ...]:
    from appliance.bundle.manifest import BundleError
    from models.inference_server import InferenceStartFailed
    from models.manifest import ModelIntegrityError, ModelNotPrepared
    from models.quantize import QuantizationFailed
    from models.registry import NothingToRollBack
    from models.source import ModelSourceError

    return (
        ApplianceError,
        SettingsError,
        ModelIntegrityError,
        ModelNotPrepared,
        InferenceStartFailed,
        QuantizationFailed,
        NothingToRollBack,
        ModelSourceError,
        BundleError,
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


def cli_settings() -> Settings:
    """The settings, with the egress guard armed before the command loads any library."""
    from appliance.egress import arm_from_settings

    settings = load_settings()
    arm_from_settings(settings)
    return settings


def log_to_stderr(settings: Settings, process: str) -> None:
    from appliance.observability.logs import configure_logging

    configure_logging(settings.logging.format, settings.logging.level, process)


def local_user() -> Principal:
    """The CLI on the host acts as a local admin: whoever can run it can read the data folder.
    Its actions are audited under the OS user's name."""
    import getpass

    return Principal.local(getpass.getuser())


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


@contextmanager
def progress_bar(description: str, total: int | None, hidden: bool) -> Iterator[Any]:
    """A bar on stderr (hidden for --json). Yields `advance()`, or `advance(done, total)`."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=errors, disable=hidden) as progress:
        task = progress.add_task(description, total=total)

        def advance(done: int | None = None, total: int | None = None) -> None:
            if done is None:
                progress.advance(task)
            else:
                progress.update(task, completed=done, total=total)

        yield advance
