"""The audit log's HMAC key: made on first use, readable by the service's user only, never shown."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from appliance.errors import ApplianceError

KEY_BYTES = 32


class AuditKeyUnsafe(ApplianceError):
    """The key file is missing, too short, or readable by other users."""

    status_code = 500


class AuditKey:
    """Signs the log's hashes; a `purpose` keeps a record's signature from passing as a head's."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < KEY_BYTES:
            raise AuditKeyUnsafe(f"the audit key must be at least {KEY_BYTES} bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "AuditKey(<secret>)"

    @classmethod
    def load_or_create(cls, path: Path) -> AuditKey:
        if not path.exists():
            _create(path)
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuditKeyUnsafe(
                f"the audit key {path} can be read by other users (mode {stat.filemode(mode)}): "
                f"`chmod 600 {path}`, and make sure it has not leaked"
            )
        secret = path.read_bytes()
        if len(secret) < KEY_BYTES:
            raise AuditKeyUnsafe(f"the audit key {path} is shorter than {KEY_BYTES} bytes")
        return cls(secret)

    def sign(self, purpose: str, message: str) -> str:
        data = f"{purpose}\0{message}".encode()
        return hmac.new(self._secret, data, hashlib.sha256).hexdigest()

    def signed(self, signature: str, purpose: str, message: str) -> bool:
        return hmac.compare_digest(signature, self.sign(purpose, message))


def _create(path: Path) -> None:
    """Writes a fresh key; when several processes start at once, the first one's key wins."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    draft = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    handle = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(secrets.token_bytes(KEY_BYTES))
            out.flush()
            os.fsync(out.fileno())
        # link() fails if the key exists, and a reader never sees a half-written key.
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink()
