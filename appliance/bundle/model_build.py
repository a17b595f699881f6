"""`appliance bundle build --model SOURCE`: the GPU profile's model, made on the build host.

The source (a local folder, or a model id fetched here: the one place allowed to reach a model
hub) is imported with its hashes, licence and chat template, then GPTQ-quantized with GPTQModel
exactly as `appliance models quantize` does, under the name the launch profile serves
(`mistral-7b-instruct-gptq` for gpu-mistral-gptq). The bundle carries the quantized version; the
offline host only verifies its hashes and serves it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.settings import Settings
from models.manifest import Manifest, ModelEntry
from models.profiles import load_profile
from models.quantize import Calibration, Progress, quantize_gptq, sample_calibration
from models.source import fetch, import_folder

# The imported, unquantized weights keep this suffix; the bundle leaves them on the build host
# (Mistral-7B in fp16: 14 GB, which the GPU host never serves).
SOURCE_SUFFIX = "-source"


@dataclass(frozen=True)
class ModelRequest:
    source: str  # a folder or a model id
    profile: str = "gpu-mistral-gptq"
    calibrate_on: Path | None = None  # documents; None: the build host's own index
    bits: int = 4
    group_size: int = 64


@dataclass(frozen=True)
class BuiltModel:
    source: ModelEntry
    quantized: ModelEntry
    calibration: Calibration


def calibration_from_documents(settings: Settings, folder: Path) -> list[tuple[str, str]]:
    """(id, text) of every chunk of the documents under `folder`, parsed and chunked as ingest
    does them; nothing is embedded or indexed. Files that cannot be read are skipped."""
    from appliance.components.embedding import build_embedder
    from ingest.chunker import Chunker
    from ingest.parsers import parser_for
    from ingest.service import document_title, expand_paths, parse_options

    chunker = Chunker(
        build_embedder(settings.embedding),
        settings.ingest.chunk_tokens,
        settings.ingest.chunk_overlap_tokens,
    )
    options = parse_options(settings)
    chunks = []
    for path in expand_paths([folder]):
        try:
            blocks = parser_for(path)(path, options)
        except Exception:  # a calibration text less, not a failed build
            continue
        pieces = chunker.split(blocks, document_title(blocks, path))
        chunks += [(f"{path}#{n}", piece.text) for n, piece in enumerate(pieces)]
    return chunks


def _indexed_chunks(settings: Settings) -> list[tuple[str, str]]:
    from appliance.container import Components

    ids, texts, _ = Components(settings).chunk_store.all_chunks()
    return list(zip(ids, texts, strict=True))


def build_model(
    settings: Settings,
    models_dir: Path,
    request: ModelRequest,
    cache: Path,
    step: Callable[[str], None] = lambda _: None,
    progress: Progress | None = None,
) -> BuiltModel:
    name = load_profile(request.profile).model
    manifest = Manifest(models_dir)
    step(f"getting {request.source}")
    folder, origin = fetch(request.source, cache / "model-sources")
    step(f"importing {folder} with its hashes")
    source = import_folder(folder, manifest, name + SOURCE_SUFFIX, origin)
    step("reading the calibration passages")
    if request.calibrate_on is not None:
        chunks = calibration_from_documents(settings, request.calibrate_on)
    else:
        chunks = _indexed_chunks(settings)
    calibration = sample_calibration(
        chunks, settings.models.calibration_texts, settings.models.calibration_seed
    )
    step(f"GPTQ {request.bits}-bit quantization of {source.name} (log in {settings.logs_dir})")
    quantized = quantize_gptq(
        settings.inference.python,
        manifest,
        source.name,
        calibration,
        settings.logs_dir / "quantize.log",
        bits=request.bits,
        group_size=request.group_size,
        name=name,
        force=True,
        progress=progress,
    )
    return BuiltModel(source, quantized, calibration)
