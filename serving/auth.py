"""API keys as bearer tokens (``Authorization: Bearer <key>``).

Keys come from ``RTML_API_KEYS`` (comma-separated; each may use every model) and/or
a key file (``RTML_API_KEYS_FILE``) that holds only SHA-256 hashes, so a leaked file
leaks no key. A line of the file is ``<sha256 hex> [model,model,...]``: the optional
list is the models that key may use. ``rtml api-key`` makes a key and its line.

A presented key is hashed and compared with every stored hash in constant time
(``hmac.compare_digest``, no early exit), so timing tells nothing about how close a
guess was. With no keys configured the API is open; ``rtml serve`` warns about it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from ml.errors import RtmlError
from serving.errors import Forbidden, Unauthorized


class KeyFileError(RtmlError):
    """The API key file cannot be read or has a bad line."""


@dataclass(frozen=True)
class ApiKey:
    digest: bytes  # SHA-256 of the key
    models: frozenset[str] | None  # None: every model

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "rtml_" + secrets.token_urlsafe(32)


class KeyRing:
    def __init__(self, keys: list[ApiKey]) -> None:
        self.keys = keys

    @property
    def is_open(self) -> bool:
        return not self.keys

    @classmethod
    def load(cls, plain: tuple[str, ...], key_file: Path | None) -> KeyRing:
        keys = [ApiKey(bytes.fromhex(hash_key(key)), None) for key in plain]
        if key_file is not None:
            keys += read_key_file(key_file)
        return cls(keys)

    def authorize(self, header: str | None, model: str | None) -> ApiKey | None:
        """The caller's key (None when the API is open); 401 for a missing or unknown key,
        403 for a key not allowed ``model``."""
        if self.is_open:
            return None
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                "missing API key", hint="send the header Authorization: Bearer <key>"
            )
        presented = hashlib.sha256(token.encode()).digest()
        found: ApiKey | None = None
        for key in self.keys:  # every key is compared: no early exit
            if hmac.compare_digest(presented, key.digest):
                found = key
        if found is None:
            raise Unauthorized("unknown API key", hint="check the key, or ask for a new one")
        if model is not None and not found.may_use(model):
            raise Forbidden(f"this API key may not use model {model!r}")
        return found


def read_key_file(path: Path) -> list[ApiKey]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyFileError(f"cannot read the API key file {path}: {exc.strerror}") from exc
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        digest, _, models = content.partition(" ")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
            raise KeyFileError(
                f"{path}:{number}: expected a SHA-256 hex digest (64 characters)",
                hint="make a key and its line with rtml api-key",
            )
        allowed = frozenset(m.strip() for m in models.split(",") if m.strip())
        keys.append(ApiKey(bytes.fromhex(digest), allowed or None))
    return keys
