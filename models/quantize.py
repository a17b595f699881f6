"""`appliance models quantize`: a prepared model to a GPTQ version beside it, with its manifest.

The work runs in the inference environment (`models.gptq_job`, GPTQModel); this side picks the
calibration texts, stages the output, hashes it and records its parent and how it was made.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from models.gptq_job import RESULT_PREFIX
from models.manifest import Manifest, ModelEntry, hash_folder, swap_in
from models.source import card_details, carry_licence

REPO_ROOT = Path(__file__).resolve().parents[1]
# GPTQModel's own progress line; the caller turns it into a progress bar.
_LAYER = re.compile(rb"Quantizing layer (\d+) of (\d+)")
# Shorter texts teach GPTQ little and GPTQModel drops those under 10 tokens anyway.
MIN_CALIBRATION_WORDS = 20
_LOG_TAIL_BYTES = 4000

Progress = Callable[[int, int], None]


class QuantizationFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Calibration:
    texts: list[str]
    chunk_ids: list[str]
    seed: int
    available: int  # chunks long enough to sample from

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.texts).encode()).hexdigest()


def sample_calibration(chunks: Sequence[tuple[str, str]], count: int, seed: int) -> Calibration:
    """`count` of the (chunk id, text) pairs, the same ones for the same index and seed."""
    usable = sorted(
        (chunk_id, text) for chunk_id, text in chunks if len(text.split()) >= MIN_CALIBRATION_WORDS
    )
    if not usable:
        raise QuantizationFailed(
            "no indexed passage is long enough to calibrate with: ingest the documents the "
            "model will answer about first (`appliance ingest FOLDER`)"
        )
    # Sorted first, so the sample depends on the index's contents and the seed, not on the
    # order the vector store happens to return them in.
    picked = random.Random(seed).sample(usable, min(count, len(usable)))
    return Calibration([text for _, text in picked], [cid for cid, _ in picked], seed, len(usable))


def version_name(source: str, bits: int, group_size: int) -> str:
    return f"{source}-gptq-{bits}bit-g{group_size}"


def _run_job(command: list[str], env: dict[str, str], log: Path, progress: Progress | None) -> str:
    """Runs it with its output appended to `log`; returns the output's tail."""
    tail = b""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            # GPTQModel writes its per-layer logs into ./logs: keep them beside the job's log,
            # not in the install folder (read-only under systemd) or the checkout.
            cwd=log.parent,
        )
        assert process.stdout is not None
        while block := process.stdout.read1(1 << 16):
            sink.write(block)
            tail = (tail + block)[-_LOG_TAIL_BYTES:]
            layers = _LAYER.findall(block)
            if progress and layers:
                done, total = layers[-1]
                progress(int(done), int(total) + 1)
        process.wait()
    text = tail.decode(errors="replace")
    if process.returncode != 0:
        raise QuantizationFailed(
            f"GPTQ quantization exited with code {process.returncode}; the end of {log}:\n"
            + "\n".join(text.replace("\r", "\n").splitlines()[-15:])
        )
    return text


def quantize_gptq(
    python: Path,
    manifest: Manifest,
    source: str,
    calibration: Calibration,
    log: Path,
    bits: int = 4,
    group_size: int = 64,
    name: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> ModelEntry:
    """The new version's manifest entry, once its folder is in place and hashed."""
    if bits not in (2, 3, 4, 8):
        raise QuantizationFailed(f"GPTQ quantizes to 2, 3, 4 or 8 bits, not {bits}")
    # Never quantize (and so launder) a tampered model: its hashes are checked first.
    parent = manifest.verify(source)
    name = name or version_name(source, bits, group_size)
    if name in manifest.entries() and not force:
        raise QuantizationFailed(
            f"version {name!r} already exists; pass --name for another or --force to replace it"
        )
    if not python.is_file():
        raise QuantizationFailed(
            f"the inference environment's Python {python} is missing; run scripts/setup.sh"
        )
    target = manifest.folder(name)
    manifest.models_dir.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # Staged beside the target so the final move is a rename on the same file system.
    with tempfile.TemporaryDirectory(dir=manifest.models_dir, prefix=".quantize-") as tmp:
        texts = Path(tmp) / "calibration.json"
        # The texts are passages of the indexed documents: readable by this user only.
        texts.touch(mode=0o600)
        texts.write_text(json.dumps(calibration.texts))
        staging = Path(tmp) / "gptq"
        command = [
            str(python),
            "-m",
            "models.gptq_job",
            f"--source={manifest.folder(source)}",
            f"--out={staging}",
            f"--calibration={texts}",
            f"--bits={bits}",
            f"--group-size={group_size}",
            f"--seed={calibration.seed}",
        ]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
        output = _run_job(command, env, log, progress)
        summary = _summary(output)
        carry_licence(manifest.folder(source), staging)
        swap_in(staging, target)
    entry = ModelEntry(
        name=name,
        format="hf",
        quantization="gptq",
        source=f"{source} quantized by GPTQModel {summary.get('gptqmodel', '?')}",
        files=hash_folder(target),
        parent=source,
        details={
            "bits": bits,
            "group_size": group_size,
            "parent_digest": parent.digest(),
            "calibration_sha256": calibration.sha256(),
            "calibration_texts": len(calibration.texts),
            "calibration_seed": calibration.seed,
            "calibration_chunks_available": calibration.available,
            "seconds": round(time.perf_counter() - started, 1),
            "gptqmodel": summary.get("gptqmodel"),
            **card_details(target),
        },
    )
    manifest.put(entry)
    return entry


def _summary(output: str) -> dict:
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return {}
