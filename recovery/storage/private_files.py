"""Local files that hold secrets or personal data (./var: the SQLite database, the secret and encryption
keys, the outbox): directories 0700, files 0600, created with that mode (no window where they are wider)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def private_dir(path: Path, *, tighten: bool = False) -> None:
    """Create `path` (and missing parents) as 0700; `tighten`: also narrow it if it already exists.

    Only what mkdir itself created is made 0700: existence is learned from mkdir, never from a check before
    it (a check can be wrong, as when a test patches Path.exists, and then every ancestor, / and /tmp
    included, was narrowed to 0700 and the machine's PostgreSQL and MariaDB stopped working)."""
    created = False
    for directory in (*reversed(path.parents), path):
        try:
            os.mkdir(directory, 0o700)
        except (FileExistsError, PermissionError):
            if os.path.isdir(directory):  # there already (PermissionError: a parent we may not write)
                continue
            raise
        os.chmod(directory, 0o700)  # mkdir's mode passes through the umask
        created = True
    if tighten and not created and _ours_alone(path):
        os.chmod(path, 0o700)


#: Never narrowed, whatever CARTRESQ_VAR_DIR says (an empty value once meant the working directory, and a
#: process started in / or /tmp made the whole machine unusable for every other user).
_SYSTEM = frozenset(Path(p) for p in (
    "/", "/tmp", "/var", "/var/tmp", "/usr", "/etc", "/home", "/root", "/dev", "/dev/shm", "/run", "/srv",
    "/opt", "/mnt", "/media", "/boot", "/proc", "/sys",
))  # fmt: skip


def _ours_alone(path: Path) -> bool:
    """A directory we may narrow: below the top level, not a system one, owned by this user and not shared
    (world-writable with the sticky bit, like /tmp and /dev/shm)."""
    resolved = path.resolve()
    if resolved in _SYSTEM or len(resolved.parts) <= 2 or resolved == Path.home():
        return False
    info = resolved.stat()
    return info.st_uid == os.getuid() and not info.st_mode & stat.S_ISVTX


def write_new(path: Path, text: str) -> bool:
    """Write `text` to a new file created 0600; False (nothing written) if it exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return True


def ensure_private_file(path: Path) -> None:
    """An empty file created 0600 if missing (SQLite then gives its -wal/-shm files the same mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
