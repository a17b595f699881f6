"""Answers that hold: are the answers right, and is anything shown that no source contains?

    .venv/bin/python bench/answers.py [--sets postgresql,python,debian-handbook,git-doc,samples]
        [--modes extract,generate:replace,generate:flag,generate:off] [--limit N] [--reingest]

For each gold set (eval/*.jsonl, questions over public Debian documentation nobody here wrote)
it fetches the documents from Debian's packages (`apt-get download`, unpacked under
.cache/corpora; no root needed), ingests them once into their own data folder under
.cache/bench-answers, and answers every question under each mode through the same services as
`appliance ask`. `generate:ACTION` is answering.mode generate with answering.unsupported ACTION;
`extract` is what the default CPU install answers (mode auto with the 135M model). vLLM (the
bundled SmolLM2, as scripts/demo.sh serves it) is started when a generate mode is asked for.

It prints one table: retrieval hit@1 and hit@5 (the default hybrid retrieval, top 10), then per
mode answer-contains, the share of answers whose model text held an unsupported number,
identifier or quote, the shares flagged and replaced, the share with an unsupported claim shown
unflagged (checked again on the final text; must be 0), and answer latency; and the claim
check's own cost per answer, timed on the generated answers as they stream.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on the path, and bench/models.py would shadow the
# appliance's `models` package.
sys.path[:] = [
    str(ROOT),
    *(entry for entry in sys.path if Path(entry or ".").resolve() != ROOT / "bench"),
]
CACHE = ROOT / ".cache"
APPLIANCE = ROOT / ".venv" / "bin" / "appliance"


@dataclass(frozen=True)
class GoldSet:
    gold: str
    package: str | None  # the Debian package holding the documents (None: in this repository)
    folder: str  # inside the unpacked package (or the repository)
    pattern: str
    skip: tuple[str, ...] = ()  # folders under `folder` that are not the manual's pages

    def files(self) -> list[Path]:
        base = (CACHE / "corpora" / self.package if self.package else ROOT) / self.folder
        found = [
            path
            for path in sorted(base.glob(self.pattern))
            if path.is_file() and not any(part in self.skip for part in path.parts)
        ]
        if not found:
            raise SystemExit(f"no {self.pattern} under {base}")
        return found


SETS = {
    "postgresql": GoldSet(
        "eval/postgresql.jsonl",
        "postgresql-doc-15",
        "usr/share/doc/postgresql-doc-15/html",
        "*.html",
    ),
    "python": GoldSet(
        "eval/python.jsonl",
        "python3.11-doc",
        "usr/share/doc/python3.11/html",
        "**/*.html",
        skip=("_sources", "_static"),  # reST sources and assets beside the pages
    ),
    "debian-handbook": GoldSet(
        "eval/debian-handbook.jsonl",
        "debian-handbook",
        "usr/share/doc/debian-handbook/html/en-US",
        "*.html",
    ),
    "git-doc": GoldSet("eval/git-doc.jsonl", "git-doc", "usr/share/doc/git/html", "*.txt"),
    "samples": GoldSet("eval/samples.jsonl", None, "samples/corpus", "*"),
}
MODES = ("extract", "generate:replace", "generate:flag", "generate:off")


def fetch(package: str) -> None:
    """The package's files under .cache/corpora/PACKAGE, from Debian's mirror, without root."""
    target = CACHE / "corpora" / package
    if target.is_dir():
        return
    downloads = CACHE / "corpora" / "debs"
    downloads.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "-q", package], cwd=downloads, check=True)
    deb = next(downloads.glob(f"{package}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)


def environ(data_dir: Path, **extra: str) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE")}
    return {
        **base,
        "HF_HUB_OFFLINE": "1",
        "APPLIANCE_DATA_DIR": str(data_dir),
        # One prepared model for every set: mode auto reads its size, vLLM serves it.
        "APPLIANCE__MODELS__DIR": str(CACHE / "bench-answers" / "models"),
        **extra,
    }


def ingest(name: str, gold_set: GoldSet, again: bool) -> Path:
    data_dir = CACHE / "bench-answers" / name
    done = data_dir / "bench-ingested"
    if done.is_file() and not again:
        return data_dir
    files = gold_set.files()
    print(f"ingesting {name}: {len(files)} files", file=sys.stderr)
    subprocess.run([str(APPLIANCE), "ingest", *map(str, files)], env=environ(data_dir), check=True)
    done.write_text(str(len(files)))
    return data_dir


def start_vllm() -> Path:
    serve = CACHE / "bench-answers" / "serve"
    subprocess.run([str(APPLIANCE), "models", "prepare"], env=environ(serve), check=True)
    subprocess.run([str(APPLIANCE), "models", "serve"], env=environ(serve), check=True)
    return serve


def measure(name: str, data_dir: Path, modes: list[str], limit: int | None) -> dict:
    from appliance.answering.claims import FLAG
    from appliance.auth.principal import Principal
    from appliance.evaluation.gold import load_gold
    from appliance.evaluation.runner import runs_for_modes
    from appliance.settings import load_settings

    gold = load_gold(ROOT / SETS[name].gold)[:limit]
    principal = Principal.local("bench")
    row: dict = {"set": name, "questions": len(gold)}
    settings = load_settings(environ=environ(data_dir))
    retrieval = next(runs_for_modes(settings, gold, ["hybrid"], principal, False, 10)).metrics()
    row["hit@1"], row["hit@5"] = retrieval["hit@1"], retrieval["hit@5"]
    for spec in modes:
        mode, _, action = spec.partition(":")
        overrides = {"APPLIANCE__ANSWERING__UNSUPPORTED": action} if action else {}
        settings = load_settings(environ=environ(data_dir, **overrides))
        run = next(runs_for_modes(settings, gold, ["hybrid"], principal, True, 10, None, [mode]))
        row[spec] = run.metrics()
        row[spec]["answers"] = [result.answer for result in run.results]
    # The claim check timed on the model's own text: `off` leaves it as written, `flag` only
    # adds marks, taken out again here.
    raw = next((spec for spec in ("generate:off", "generate:flag") if spec in modes), None)
    if raw:
        answers = [answer and answer.replace(FLAG, "") for answer in row[raw]["answers"]]
        row["check_ms"] = claim_check_ms(data_dir, gold, answers)
    return row


def claim_check_ms(data_dir: Path, gold, answers: list[str | None]) -> list[float]:
    """The claim guard's time per answer, the raw model answers streamed through it in pieces
    of about one token (4 characters), against the passages the answer was given."""
    from appliance.answering.claim_guard import ClaimGuard
    from appliance.answering.claims import Evidence
    from appliance.auth.principal import Principal
    from appliance.container import Components
    from appliance.settings import load_settings

    components = Components(load_settings(environ=environ(data_dir)))
    principal = Principal.local("bench")
    timings = []
    for item, answer in zip(gold, answers, strict=True):
        if not answer:
            continue
        hits = components.answers.search(item.question, principal)
        started = time.perf_counter()
        guard = ClaimGuard(Evidence([hit.text for hit in hits], item.question), "flag")
        for start in range(0, len(answer), 4):
            guard.feed(answer[start : start + 4])
        guard.finish()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def table(rows: list[dict], modes: list[str]) -> str:
    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [
        "| set | questions | hit@1 | hit@5 | mode | answer contains | unsupported (model) "
        "| flagged | replaced | unsupported shown unflagged | answer p50 / p95 ms |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        for index, spec in enumerate(modes):
            metrics = row[spec]
            lead = (
                f"| {row['set']} | {row['questions']} | {row['hit@1']:.3f} | {row['hit@5']:.3f} "
                if index == 0
                else "| | | | "
            )
            lines.append(
                f"{lead}| {spec} | {share(metrics['answer_contains'])} "
                f"| {share(metrics['unsupported'])} | {share(metrics['flagged'])} "
                f"| {share(metrics['replaced'])} | {share(metrics['unsupported_shown_unflagged'])} "
                f"| {metrics['answer_p50_ms']:.0f} / {metrics['answer_p95_ms']:.0f} |"
            )
    checks = [ms for row in rows for ms in row.get("check_ms", [])]
    if checks:
        lines.append(
            f"\nclaim check per generated answer ({len(checks)} answers): "
            f"p50 {percentile(checks, 50):.2f} ms, p95 {percentile(checks, 95):.2f} ms, "
            f"max {max(checks):.2f} ms (mean {statistics.mean(checks):.2f})"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--limit", type=int, default=None, help="first N questions of each set")
    parser.add_argument("--reingest", action="store_true", help="ingest again (code changed)")
    parser.add_argument("--json", type=Path, help="also write every answer and metric here")
    args = parser.parse_args()
    names = [name for name in args.sets.split(",") if name]
    modes = [mode for mode in args.modes.split(",") if mode]
    unknown = [name for name in names if name not in SETS] + [
        mode for mode in modes if not re.fullmatch(r"extract|generate:(replace|flag|off)", mode)
    ]
    if unknown:
        raise SystemExit(f"unknown: {', '.join(unknown)}")
    os.environ["HF_HUB_OFFLINE"] = "1"
    data_dirs = {}
    for name in names:
        if SETS[name].package:
            fetch(SETS[name].package)
        data_dirs[name] = ingest(name, SETS[name], args.reingest)
    serve = start_vllm() if any(mode.startswith("generate") for mode in modes) else None
    try:
        rows = [measure(name, data_dirs[name], modes, args.limit) for name in names]
    finally:
        if serve:
            subprocess.run([str(APPLIANCE), "models", "stop"], env=environ(serve), check=False)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(table(rows, modes))


if __name__ == "__main__":
    main()
