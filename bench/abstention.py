"""Calibrates `answering.abstain_below`: the best passage's cosine for questions the corpus
answers and for questions it does not, and what each threshold would do to both.

    .venv/bin/python bench/abstention.py                  # git-doc (ingested into a temp dir)
    .venv/bin/python bench/abstention.py --data-dir DIR   # an index already built from git-doc

On-topic questions are eval/git-doc.jsonl's 51; off-topic ones are below: other domains, and
near misses (version control that is not git, git hosting products the manuals do not cover).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.ingest import CORPUS, appliance_settings, ensure_corpus  # noqa: E402

OFF_TOPIC = [
    "How many vacation days do new employees get?",
    "What is the airspeed velocity of an unladen swallow?",
    "How do I bake sourdough bread at home?",
    "Which countries border Switzerland?",
    "What is the boiling point of water at high altitude?",
    "How do I reset my VPN password?",
    "Who approves travel expense reports?",
    "What are the symptoms of the flu?",
    "How do I change a flat bicycle tyre?",
    "What is the capital of Australia?",
    "How should I prepare for a job interview?",
    "What is the best fertilizer for tomatoes?",
    "How do I file my income tax return?",
    "What time does the cafeteria open?",
    "How do I configure the office printer?",
    "Which stretches help with back pain?",
    "What is the plot of Hamlet?",
    "How long should a hard-boiled egg cook?",
    "How do I book a meeting room?",
    "What is the speed of light in vacuum?",
    "How do I train a puppy to sit?",
    "What is our parental leave policy?",
    "How do I rotate the tyres on my car?",
    "Which wine goes with fish?",
    "How is photosynthesis powered?",
    # Near misses: neighbours of git the manuals do not document.
    "How do I create a branch in Subversion with svn copy?",
    "How do I open a merge request in GitLab's web interface?",
    "How do I set up GitHub Actions to run my tests?",
    "How do I commit a change in Mercurial?",
    "How do I resolve a conflict in Perforce?",
]
THRESHOLDS = [0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45]


def build_index(data_dir: Path) -> None:
    from appliance.container import Components
    from ingest.catalog import Catalog
    from ingest.service import IngestService

    ensure_corpus(CORPUS)
    settings = appliance_settings(
        data_dir, embedding__backend="openvino", embedding__precision="bf16"
    )
    components = Components(settings)
    files = sorted(CORPUS.glob("*.txt"))
    print(f"ingesting {len(files)} files of {CORPUS} into {data_dir} ...", flush=True)
    IngestService(
        settings, components.embedder, components.chunk_store, Catalog.for_settings(settings)
    ).ingest(files)


def best_scores(data_dir: Path, questions: list[str]) -> list[tuple[float, list[str]]]:
    from appliance.auth.principal import Principal
    from appliance.container import Components

    components = Components(appliance_settings(data_dir))
    principal = Principal.local("bench")
    found = []
    for question in questions:
        hits = components.answers.search(question, principal, 5)
        best = max((hit.score for hit in hits), default=-1.0)
        found.append((best, [Path(hit.path).name for hit in hits]))
    return found


def summary(scores: list[float]) -> str:
    quartiles = statistics.quantiles(scores, n=4)
    return (
        f"min {min(scores):.3f}  p25 {quartiles[0]:.3f}  median {quartiles[1]:.3f}  "
        f"p75 {quartiles[2]:.3f}  max {max(scores):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="an index of git-doc already built")
    args = parser.parse_args()
    gold = [json.loads(line) for line in (ROOT / "eval" / "git-doc.jsonl").read_text().splitlines()]
    with tempfile.TemporaryDirectory(prefix="abstention-") as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        if args.data_dir is None:
            build_index(data_dir)
        on = best_scores(data_dir, [item["question"] for item in gold])
        off = best_scores(data_dir, OFF_TOPIC)
    found = [item["expected_source"] in paths for item, (_, paths) in zip(gold, on, strict=True)]
    on_scores = [score for score, _ in on]
    off_scores = [score for score, _ in off]
    near = off_scores[-5:]
    print(f"\non-topic  ({len(on_scores)}): {summary(on_scores)}")
    print(f"off-topic ({len(off_scores)}): {summary(off_scores)}")
    print(f"near misses ({len(near)}): " + ", ".join(f"{score:.3f}" for score in near))
    print(
        "\n| abstain below | on-topic answered | on-topic with source in top 5 answered "
        "| off-topic abstained |"
    )
    print("| ---: | ---: | ---: | ---: |")
    with_source = [score for score, ok in zip(on_scores, found, strict=True) if ok]
    for threshold in THRESHOLDS:
        answered = sum(score >= threshold for score in on_scores)
        answered_found = sum(score >= threshold for score in with_source)
        abstained = sum(score < threshold for score in off_scores)
        print(
            f"| {threshold:.2f} | {answered}/{len(on_scores)} | "
            f"{answered_found}/{len(with_source)} | {abstained}/{len(off_scores)} |"
        )


if __name__ == "__main__":
    main()
