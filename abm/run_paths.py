"""Where a run directory goes and whether it may be written there.

The default name of a run directory (:func:`default_run_dir`: ``<scenario>-<seed>-<8 hex of the
scenario's hash>``), safe path components, and the checks made before anything is written: the target
is free (or ``force`` replaces it), its path fits the file system's limits, and the hidden temporary
directories that killed writers left beside it are removed (:func:`clean_stale_temporaries`).
:mod:`abm.outputs` writes the run there; the sweep journal uses the same checks.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from abm.config import Scenario
from abm.run_manifest import MANIFEST_NAME, _scenario_payload, canonical_json

__all__ = [
    "OutputExistsError",
    "check_can_write_in",
    "check_out_dir",
    "check_path_lengths",
    "clean_stale_temporaries",
    "current_umask",
    "default_run_dir",
    "safe_component",
]

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class OutputExistsError(Exception):
    """The output directory already exists (or cannot be replaced safely).

    Args:
        path: The existing output path.
        reason: Why it cannot be written; by default it exists and ``force`` was not given.
    """

    def __init__(self, path: Path | str, reason: str | None = None) -> None:
        self.path = Path(path)
        if reason is None:
            reason = "already exists; use --force to replace it"
        super().__init__(f"output directory {self.path} {reason}")


# --------------------------------------------------------------------------- names


def default_run_dir(scenario: Scenario, seed: int, base: Path = Path("outputs")) -> Path:
    """Return the default run directory ``<base>/<scenario name>-<seed>-<8 hex>``.

    The hex is the start of the sha256 of the canonical JSON of the scenario together with the seed,
    so two runs share a directory only when both scenario and seed are the same. Characters of the
    scenario name that are unsafe in file names become ``_``.

    Args:
        scenario: The resolved scenario.
        seed: The run's seed.
        base: The directory that holds run directories.

    Returns:
        The run directory path (not created).
    """
    payload = canonical_json({"scenario": _scenario_payload(scenario), "seed": int(seed)})
    short_hash = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:8]
    return Path(base) / f"{safe_component(scenario.name, 'run')}-{int(seed)}-{short_hash}"


def safe_component(name: str, empty: str = "run") -> str:
    """A name as one safe path component: characters outside ``[A-Za-z0-9._-]`` become ``_``.

    No separator survives and leading or trailing dots and underscores are dropped, so the result can
    neither climb out of the directory it is put in nor be hidden; at most 100 characters.

    Example:
        >>> safe_component("/../../../../elsewhere/escaped"), safe_component("..", "sweep")
        ('elsewhere_escaped', 'sweep')
    """
    return _UNSAFE_NAME_CHARS.sub("_", name).strip("._")[:100].strip("._") or empty


# --------------------------------------------------------------------------- checks


def check_out_dir(path: Path | str, force: bool) -> None:
    """Check that a run can be written to ``path``.

    Args:
        path: The target run directory.
        force: Whether an existing run directory may be replaced.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false; or it exists but is not a directory,
            or is a non-empty directory without a ``manifest.json`` (not a run directory, so it is never
            deleted, even with ``force``).
        PermissionError: The parent directory (or its nearest existing ancestor) is not writable, or
            a directory cannot be made in it (a special file system such as ``/proc``, which
            ``os.access`` calls writable to root, or a full one).
    """
    path = Path(path)
    check_path_lengths(path)  # before exists(), which raises for a name the file system refuses
    if path.exists() or path.is_symlink():
        if not force:
            raise OutputExistsError(path)
        if path.is_symlink() or not path.is_dir():
            raise OutputExistsError(path, "exists and is not a directory; refusing to replace it")
        # --force must never wipe an unrelated directory (say `--out .`): only a run directory or an
        # empty one is replaced.
        if not (path / MANIFEST_NAME).is_file() and any(path.iterdir()):
            raise OutputExistsError(
                path, f"is not a run directory (no {MANIFEST_NAME}); refusing to replace it even with --force"
            )
    check_can_write_in(path.absolute().parent, path)


def check_can_write_in(directory: Path | str, target: Path | str | None = None) -> None:
    """Check that directories can be made in ``directory`` (or its nearest existing ancestor).

    A directory is made there and removed at once: a run or a sweep can take hours, and what it
    writes comes at the end, so a place that refuses is reported before any work.

    Args:
        directory: Where the output will be made (it need not exist yet).
        target: The output named in the messages (``directory`` by default).

    Raises:
        OutputExistsError: ``target`` is a name or path too long to create (:func:`check_path_lengths`).
        PermissionError: The nearest existing ancestor is not a directory, is not writable, or
            refuses to make a directory (a special file system such as ``/proc``, which
            ``os.access`` calls writable to root, or a full one).
    """
    target = Path(directory if target is None else target)
    check_path_lengths(target)  # before exists(), which raises for a name the file system refuses
    ancestor = Path(directory).absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise PermissionError(f"cannot create output directory {target}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write output directory {target}: {ancestor} is not writable")
    try:
        probe = tempfile.mkdtemp(prefix=".abm-write-probe-", dir=ancestor)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PermissionError(
            f"cannot write output directory {target}: no directory can be made in {ancestor} ({reason})"
        ) from None
    os.rmdir(probe)


def check_path_lengths(path: Path | str) -> None:
    """Refuse, before any work, a path the file system cannot create (a component or the whole too long).

    Raises:
        OutputExistsError: A component of ``path`` is longer than the file system's name limit, or
            the path (with room for the temporary sibling and the files inside) than its path limit.
    """
    path = Path(path)
    absolute = path.absolute()
    name_max, path_max = 255, 4096  # the common limits, where the file system cannot be asked
    ancestor = absolute.parent
    try:
        while not ancestor.exists():
            ancestor = ancestor.parent
        name_max = os.pathconf(ancestor, "PC_NAME_MAX")
        path_max = os.pathconf(ancestor, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        pass
    for part in absolute.parts[1:]:
        if len(os.fsencode(part)) > name_max:
            raise OutputExistsError(
                path, f"cannot be created: the name {part[:40]}... is longer than {name_max} bytes"
            )
    # The temporary sibling's name is bounded (see _temp_prefix); the files inside need room as well.
    parent_bytes = len(os.fsencode(str(absolute.parent))) + 1
    longest = parent_bytes + max(len(os.fsencode(absolute.name)), _TEMP_NAME_BYTES) + _INNER_PATH_BYTES
    if longest >= path_max:
        raise OutputExistsError(path, f"cannot be created: the path is longer than {path_max} bytes")


# Written beside the run directory while it is being built: ".<name>.tmp-<pid>-<random>". The name is cut
# so that any legal run directory name gives a legal temporary name.
_TEMP_NAME_BYTES = 1 + 150 + len(".tmp-") + 20 + 1 + 8
_INNER_PATH_BYTES = 120  # figures/depth_<instrument name>.png and the like
_TEMP_NAME = re.compile(r"^\..*\.(?:tmp|old)-(\d+)-[A-Za-z0-9_]+$")
# A leftover whose writer is not running here is removed once it is this old; one whose writer may be
# running elsewhere (another host on a shared file system) only after a day.
_STALE_DEAD_SECONDS = 600.0
_STALE_ANY_SECONDS = 86_400.0


def _temp_prefix(name: str, kind: str = "tmp") -> str:
    short = os.fsdecode(os.fsencode(name)[:150]).rstrip("\ufffd") or "run"
    return f".{short}.{kind}-{os.getpid()}-"


def clean_stale_temporaries(parent: Path | str, *, now: float | None = None) -> list[Path]:
    """Remove what killed writers left in ``parent``: hidden ``.<name>.tmp-<pid>-*`` directories.

    A leftover is removed only when the current user owns it and either its writer's process id is
    not running on this host and it is older than 10 minutes, or it is older than a day (a writer on
    another host of a shared file system). A run being written elsewhere is never touched.

    Args:
        parent: The directory that holds run directories.
        now: The current time (seconds since the epoch); the clock by default.

    Returns:
        The directories removed, in name order.
    """
    import time

    parent = Path(parent)
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None:
            continue
        try:
            info = entry.lstat()
        except OSError:
            continue
        if not entry.is_dir() or entry.is_symlink() or info.st_uid != os.getuid():
            continue
        age = now - info.st_mtime
        if age > _STALE_ANY_SECONDS or (age > _STALE_DEAD_SECONDS and not _process_alive(int(match[1]))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or not knowable: keep its directory
    return True


def current_umask() -> int:
    """The process's file-mode creation mask."""
    # Reading /proc avoids the os.umask set-and-restore race with other threads where possible.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
