"""Folders the appliance makes for its data are readable by its own user only.

Under systemd the units set UMask=0077; run by hand (scripts/demo.sh, a developer's shell) the
umask is usually 022, which left the catalog, the audit log and Chroma's files world-readable.
A folder that exists already keeps the mode an administrator gave it (Ansible makes the data
folder 0750 for the operators' group).
"""

from __future__ import annotations

import contextlib
from pathlib import Path


def make_private_dirs(path: Path) -> None:
    """`path` and each missing folder above it, made mode 0700."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            folder.mkdir(mode=0o700)
