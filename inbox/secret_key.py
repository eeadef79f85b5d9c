"""The key that signs operators' sessions and CSRF tokens (and anything else the app signs).

``OTKLIK_SECRET_KEY`` wins when it is set. When it is not, a random key is generated once and
kept in ``$OTKLIK_DATA_DIR/secret_key`` (mode 0600), so that ``make run`` needs no set-up and
every process of a deployment that shares the data directory (``otklik serve``, ``otklik
worker``, the CLI) signs with the same key, and a restart does not log everybody out.

The file is created so that no process ever reads half a key, and two processes starting at
once end with the same one: the key is written to a temporary file of its own
(``O_CREAT | O_EXCL``, 0600), which is then hard-linked to ``secret_key``; ``link`` fails if
the name exists, so the first one wins and the others read the winner's key back.

A key file that others may read (group or world permissions) is refused: whoever can read it
can sign sessions as any operator, administrators included.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.config import Settings

FILE_NAME = "secret_key"
#: The default this project once shipped in its settings (and still in old ``.env`` files):
#: known to everyone, so a server signing with it accepts anyone's forged session.
PUBLISHED_DEFAULT = "change-me-in-production"
#: Shorter keys are refused by ``otklik serve`` and ``otklik worker``.
MIN_LENGTH = 32


class SecretKeyError(Exception):
    """The key file cannot be used; the message is one line for the operator of the server."""


def key_path(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


def effective_secret_key(settings: Settings) -> str:
    """``OTKLIK_SECRET_KEY`` if set, else the data directory's key (created on first use)."""
    if settings.secret_key:
        return settings.secret_key
    return load_or_create(settings.data_dir)


def with_secret_key(settings: Settings) -> Settings:
    """``settings`` whose ``secret_key`` is the key to sign with (see ``effective_secret_key``):
    what every process builds its runtime from, so all of them sign alike."""
    if settings.secret_key:
        return settings
    return settings.model_copy(update={"secret_key": load_or_create(settings.data_dir)})


def weak_key_problem(key: str) -> str | None:
    """Why ``key`` (from ``OTKLIK_SECRET_KEY``) must not sign sessions, or None."""
    if key == PUBLISHED_DEFAULT:
        return (
            "OTKLIK_SECRET_KEY is the published default: anyone could sign a session as an "
            "administrator. Unset it (a random key is then kept in the data directory) or set "
            f"a random one of {MIN_LENGTH}+ characters"
        )
    if len(key) < MIN_LENGTH:
        return (
            f"OTKLIK_SECRET_KEY is {len(key)} characters long; it must have at least "
            f"{MIN_LENGTH} (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))'),"
            " or unset it to use a random key kept in the data directory"
        )
    return None


def load_or_create(data_dir: Path) -> str:
    """The key kept in ``data_dir``; generated and stored there first if there is none."""
    path = key_path(data_dir)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise SecretKeyError(f"cannot read the secret key {path}: {exc.strerror}") from None
    try:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        _create(path, secrets.token_urlsafe(48))
        return _read(path)
    except OSError as exc:
        raise SecretKeyError(f"cannot store a new secret key in {path}: {exc.strerror}") from None


def _create(path: Path, key: str) -> None:
    """Store ``key`` at ``path`` unless another process got there first (then keep theirs)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: its key is used
            os.link(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _read(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd, encoding="ascii", errors="replace") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise SecretKeyError(f"{path} is not a regular file")
        if mode & 0o077:
            raise SecretKeyError(
                f"{path} may be read by other users (mode {stat.S_IMODE(mode):04o}): "
                f"chmod 600 {path}, or delete it to have a new key generated"
            )
        key = handle.read().strip()
    if len(key) < MIN_LENGTH:
        raise SecretKeyError(
            f"{path} holds no usable key ({len(key)} characters, at least {MIN_LENGTH} needed): "
            "delete it to have a new key generated"
        )
    return key
