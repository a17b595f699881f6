"""A model from outside the appliance, brought in on the connected build host.

SOURCE is a local folder in Hugging Face's layout, or a model id (`mistralai/Mistral-7B-
Instruct-v0.3`, optionally `@revision`) fetched from the hub: the build host is the one place
allowed to reach a model hub (`HF_HUB_OFFLINE` is lifted for that download only, in a child
process). The folder is imported into the manifest with its hashes, and what a person auditing
the install asks first: where it came from, under which licence, and which chat template.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from models.chat_template import accepts_system_role, chat_template
from models.manifest import Manifest, ModelEntry, hash_folder, sha256_file, swap_in
from models.size import parameter_count

# What serving needs, and the licence and card; never pickled `*.bin` weights (loading one runs
# code) nor the original training checkpoints some repositories also carry.
WANTED = (
    "*.json",
    "*.safetensors",
    "tokenizer.model",
    "*.jinja",
    "LICENSE*",
    "LICENCE*",
    "NOTICE*",
    "USE_POLICY*",
    "README.md",
)
# Mistral's repositories also carry their own format beside the Hugging Face one: the same
# weights again in consolidated.safetensors (14 GB for the 7B) and params.json. Not served.
UNWANTED = ("consolidated*", "params.json", "original/*")
_MODEL_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?")
# Run in a child process: huggingface_hub reads HF_HUB_OFFLINE once, when it is imported.
_DOWNLOAD = """
import json, sys
from huggingface_hub import HfApi, snapshot_download
repo, revision, target = sys.argv[1], sys.argv[2], sys.argv[3]
wanted, unwanted = json.loads(sys.argv[4]), json.loads(sys.argv[5])
sha = HfApi().model_info(repo, revision=revision).sha
snapshot_download(
    repo, revision=sha, local_dir=target, allow_patterns=wanted, ignore_patterns=unwanted
)
print(json.dumps({"sha": sha}))
"""


class ModelSourceError(RuntimeError):
    pass


def fetch(source: str, cache: Path) -> tuple[Path, str]:
    """The source's folder, and a line saying where it came from (for the manifest)."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        return folder.resolve(), f"folder {folder.resolve()}"
    if not _MODEL_ID.fullmatch(source) or source.startswith((".", "/", "~")):
        raise ModelSourceError(
            f"{source!r} is neither a folder nor a model id such as "
            "mistralai/Mistral-7B-Instruct-v0.3 (optionally @revision)"
        )
    repo, _, revision = source.partition("@")
    target = cache / repo.replace("/", "--")
    target.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "0"}
    command = [sys.executable, "-c", _DOWNLOAD, repo, revision or "main", str(target)]
    result = subprocess.run(
        [*command, json.dumps(list(WANTED)), json.dumps(list(UNWANTED))],
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-6:])
        raise ModelSourceError(
            f"could not fetch {source} from the model hub (a gated model such as Mistral's "
            f"needs its terms accepted and HF_TOKEN set on this build host):\n{tail}"
        )
    sha = json.loads(result.stdout.strip().splitlines()[-1])["sha"]
    return target, f"hub {repo}@{sha}"


def licence(folder: Path) -> dict[str, Any]:
    """The licence files' names and hashes, and the card's `license:` field, if any."""
    files = sorted(
        path.name
        for path in folder.iterdir()
        if path.is_file() and path.name.upper().startswith(("LICENSE", "LICENCE", "NOTICE"))
    )
    declared = None
    card = folder / "README.md"
    if card.is_file():
        front = card.read_text(encoding="utf-8", errors="replace").split("---")
        if len(front) > 2 and not front[0].strip():
            found = re.search(r"^license:\s*(\S+)", front[1], re.MULTILINE)
            declared = found.group(1).strip("'\"") if found else None
    return {
        "declared": declared,
        "files": {name: sha256_file(folder / name) for name in files},
    }


def card_details(folder: Path) -> dict[str, Any]:
    """Licence, chat template and size, recorded in a version's manifest entry."""
    template = chat_template(folder)
    parameters = parameter_count(folder)
    return {
        "licence": licence(folder),
        "chat_template_sha256": (
            None if template is None else hashlib.sha256(template.encode("utf-8")).hexdigest()
        ),
        "chat_template_system_role": accepts_system_role(folder),
        "parameters_b": None if parameters is None else round(parameters / 1e9, 3),
    }


def _check_layout(folder: Path) -> None:
    problems = []
    if not (folder / "config.json").is_file():
        problems.append("no config.json")
    if not list(folder.glob("*.safetensors")):
        problems.append("no *.safetensors weights (pickled *.bin weights are not accepted)")
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        problems.append("no tokenizer.json or tokenizer.model")
    if problems:
        raise ModelSourceError(
            f"{folder} is not a model folder vLLM can serve: {'; '.join(problems)}"
        )


def import_folder(folder: Path, manifest: Manifest, name: str, origin: str) -> ModelEntry:
    """Copies what serving needs from `folder` into the manifest as version `name` (format hf,
    unquantized), with its hashes and card details."""
    _check_layout(folder)
    target = manifest.folder(name)
    manifest.models_dir.mkdir(parents=True, exist_ok=True)
    # Staged beside the target so the final move is a rename on the same file system.
    with tempfile.TemporaryDirectory(dir=manifest.models_dir, prefix=".import-") as tmp:
        staging = Path(tmp) / name
        staging.mkdir()
        for pattern in WANTED:
            for path in folder.glob(pattern):
                if path.is_file() and not any(path.match(skip) for skip in UNWANTED):
                    shutil.copy2(path, staging / path.name)
        swap_in(staging, target)
    entry = ModelEntry(
        name=name,
        format="hf",
        quantization="none",
        source=origin,
        files=hash_folder(target),
        details=card_details(target),
    )
    manifest.put(entry)
    return entry


def carry_licence(parent: Path, child: Path) -> None:
    """A derived version (GPTQ) keeps its parent's licence and card: quantizing does not change
    the terms the weights come under, and GPTQModel writes neither."""
    card = ("LICENSE", "LICENCE", "NOTICE", "USE_POLICY", "README")
    for path in parent.iterdir():
        copied = child / path.name
        if path.is_file() and path.name.upper().startswith(card) and not copied.exists():
            shutil.copy2(path, copied)
