"""Atomic file writing: every output is written under a temporary name, then renamed onto its final name.

A crash or a bad input therefore never leaves a half-written NIfTI or JSON behind. Temporary files live in a hidden
sub-folder ``.seganypet_tmp`` of the target's folder (nnU-Net lists files, not sub-folders, so a file left there by
``kill -9`` is never counted as a case), carry the writer's process id, and are removed by the next writer once that
process is gone. Temporary folders (``atomic_folder``, staging) are hidden siblings named ``.<name>.seganypet-<pid>.*``
and are cleaned the same way.

Every published file is verified before its rename (``verify_written``): flushed to disk (fsync), then re-read far
enough to prove it complete (an image's header and whole data stream, a JSON document, a zip archive's CRCs, a
blosc2 array's chunks). SimpleITK's NIfTI writer does not raise on a short write (disk full), so without this a
full disk would publish truncated files. A full disk (or a file-size limit) is one ``OutOfSpaceError`` line naming
the folder and the bytes needed; the temporary file is removed and nothing is published.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from seganypet_nnunet.errors import InputNotFoundError, SeganypetError, one_line

TMP_DIR = ".seganypet_tmp"
_PID_TAG = "seganypet-"
#: errno values meaning "no room for this write": disk full, file-size limit (RLIMIT_FSIZE), quota.
SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
_SLACK = 1 << 20  # a short write with this much more room than needed is not "disk full"
IMAGE_ENDINGS = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr")


class OutOfSpaceError(SeganypetError, OSError):
    """An output did not fit: one line naming the folder, the bytes needed and the bytes free."""


class IncompleteWriteError(SeganypetError):
    """A file we wrote reads back incomplete (a short write the writer did not report)."""


def free_bytes(folder: str | os.PathLike) -> int | None:
    """Bytes free to this user on the file system holding ``folder`` (its nearest existing parent), or None."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def out_of_space(folder: str | os.PathLike, needed: int | None = None) -> OutOfSpaceError:
    """The one-line error for an output that did not fit in ``folder`` (``needed``: bytes, an estimate)."""
    free = free_bytes(folder)
    parts = [f"about {needed} bytes needed" if needed else None, f"{free} bytes free" if free is not None else None]
    detail = ", ".join(p for p in parts if p)
    return OutOfSpaceError(f"{folder}: out of disk space ({detail}); nothing was written there")


def is_space_error(error: BaseException) -> bool:
    """An OSError meaning the disk (or the file-size limit) is full."""
    return isinstance(error, OSError) and error.errno in SPACE_ERRNOS


@contextlib.contextmanager
def space_errors(folder: str | os.PathLike, needed: int | None = None) -> Iterator[None]:
    """Turn "disk full" OSErrors in the block into ``out_of_space(folder, needed)``, and ``IncompleteWriteError``
    too when ``folder`` has no room to spare (else the short file is reported as it is)."""
    try:
        yield
    except OutOfSpaceError:
        raise
    except (OSError, IncompleteWriteError) as err:
        if is_space_error(err) or (isinstance(err, IncompleteWriteError) and _short_of_space(folder, needed)):
            raise out_of_space(folder, needed) from None
        raise


def _short_of_space(folder: str | os.PathLike, needed: int | None) -> bool:
    """Whether a short write in ``folder`` is explained by its free space (below ``needed`` plus ``_SLACK``)."""
    free = free_bytes(folder)
    return free is not None and free < (needed or 0) + _SLACK


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify_written(path: str | os.PathLike, expected_bytes: int | None = None) -> None:
    """Flush ``path`` to disk and prove it complete by its type; ``IncompleteWriteError`` (one line) otherwise.

    ``expected_bytes``: the exact length the file must have (any type). Images (``IMAGE_ENDINGS``): header read
    and the whole data stream read back (NIfTI: length against its header; gzip: the stream's end). ``.json``:
    parses. ``.npz`` / ``.pth`` / ``.pt`` (zip archives): every member's CRC. ``.b2nd``: every chunk decompresses.
    ``.pkl``: ends with pickle's STOP opcode. Other files: length > 0, or exactly ``expected_bytes`` when given.
    """
    from seganypet_nnunet import validation

    path = Path(path)
    _fsync(path)
    size = path.stat().st_size
    name = path.name.lower()
    if expected_bytes is not None and size != expected_bytes:
        raise IncompleteWriteError(f"{path}: {size} bytes on disk, {expected_bytes} written")
    if expected_bytes is None and size == 0:
        raise IncompleteWriteError(f"{path}: 0 bytes on disk")
    try:
        if name.endswith(IMAGE_ENDINGS):
            validation.check_not_truncated(path)
            if not name.endswith((".nii", ".nii.gz")):  # NIfTI: check_not_truncated read the whole stream
                sitk.ReadImage(str(path))
        elif name.endswith(".json"):
            json.loads(path.read_text())
        elif name.endswith((".npz", ".pth", ".pt")) and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            if bad is not None:
                raise IncompleteWriteError(f"{path}: member {bad} is corrupt")
        elif name.endswith((".npz", ".pth", ".pt")):
            raise IncompleteWriteError(f"{path}: not a complete zip archive")
        elif name.endswith(".pkl"):
            with open(path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b".":  # every pickle ends with the STOP opcode
                    raise IncompleteWriteError(f"{path}: pickle stream cut short")
        elif name.endswith(".b2nd"):
            import blosc2

            array = blosc2.open(str(path), mode="r")
            for i in range(array.schunk.nchunks):
                array.schunk.decompress_chunk(i)
    except IncompleteWriteError:
        raise
    except (SeganypetError, RuntimeError, ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise IncompleteWriteError(f"{path}: incomplete after writing ({one_line(err)})") from None


def _estimate(tmp: Path, needed: int | None) -> int | None:
    if needed is not None:
        return needed
    with contextlib.suppress(OSError):
        return tmp.stat().st_size or None
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_pid(name: str) -> int | None:
    """The process id in a name made by ``temp_prefix`` (``...seganypet-<pid>.<random>...``), or None."""
    _, tag, rest = name.partition(_PID_TAG)
    digits = rest.split(".", 1)[0]
    return int(digits) if tag and digits.isdigit() else None


def temp_prefix(name: str) -> str:
    """Prefix of a hidden temporary entry for ``name`` owned by this process: ``.<name>.seganypet-<pid>.``."""
    return f".{name}.{_PID_TAG}{os.getpid()}."


def remove_stale(folder: str | os.PathLike, temp_dir_only: bool = False) -> list[Path]:
    """Delete hidden temporary entries in ``folder`` (and its ``.seganypet_tmp``) whose writer process is gone.

    ``temp_dir_only`` scans only ``.seganypet_tmp`` (cheap: every atomic write does it, however large ``folder`` is).
    """
    removed = []
    folder = Path(folder)
    for parent in (folder / TMP_DIR,) if temp_dir_only else (folder, folder / TMP_DIR):
        if not parent.is_dir():
            continue
        for entry in parent.iterdir():
            pid = _owner_pid(entry.name) if entry.name.startswith(".") else None
            if pid is None or pid == os.getpid() or _pid_alive(pid):
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, needed: int | None = None, verify: bool = True) -> Iterator[Path]:
    """Yield a temporary path for ``target`` (in ``.seganypet_tmp`` beside it); rename it onto ``target`` on success.

    The temporary name keeps the full suffix (``.nii.gz``), so writers choose the right format. Before the rename
    the file is verified (``verify_written``); a full disk, a file-size limit or a short write raises
    ``OutOfSpaceError`` naming ``target``'s folder and ``needed`` bytes (an estimate; default the bytes written),
    and the temporary file is removed.
    """
    target = Path(target)
    tmp_dir = target.parent / TMP_DIR
    with space_errors(target.parent, needed):
        tmp_dir.mkdir(parents=True, exist_ok=True)
    remove_stale(target.parent, temp_dir_only=True)
    suffix = "".join(target.suffixes) or ".tmp"
    with space_errors(target.parent, needed):
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target.name.split(".")[0]), suffix=suffix, dir=tmp_dir)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            if verify:
                verify_written(tmp_path)
        except (OSError, IncompleteWriteError) as err:
            if isinstance(err, OutOfSpaceError) or not (isinstance(err, IncompleteWriteError) or is_space_error(err)):
                raise
            estimate, free = _estimate(tmp_path, needed), free_bytes(tmp_dir)
            if isinstance(err, IncompleteWriteError) and free is not None and free >= (estimate or 0) + _SLACK:
                raise IncompleteWriteError(one_line(err).replace(str(tmp_path), str(target))) from None
            tmp_path.unlink(missing_ok=True)  # before measuring what is free
            raise out_of_space(target.parent, estimate) from None
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
        with contextlib.suppress(OSError):
            tmp_dir.rmdir()  # only when empty (another writer may still use it)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_image(image: sitk.Image, target: str | os.PathLike, compress: bool = True) -> Path:
    """Write a SimpleITK image atomically (geometry included), verified, and return the final path.

    Raises:
        OutOfSpaceError: the disk is full (SimpleITK's writers report that only for some formats).
    """
    needed = image.GetNumberOfPixels() * image.GetSizeOfPixelComponent() * image.GetNumberOfComponentsPerPixel()
    needed += 1024  # header
    with atomic_path(target, needed=needed) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), useCompression=compress)
        except RuntimeError as err:
            free = free_bytes(tmp.parent)
            if free is not None and free < needed:
                raise out_of_space(Path(target).parent, needed) from None
            raise SeganypetError(f"{target}: could not write image ({one_line(err)})") from None
    return Path(target)


def plain(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python numbers/lists, recursively (tensors and plain types kept),
    so a checkpoint holding it loads with ``torch.load(weights_only=True)`` and JSON can encode it."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def write_json(obj, target: str | os.PathLike, indent: int = 2) -> Path:
    """Write JSON atomically and return the final path."""
    text = (json.dumps(obj, indent=indent, sort_keys=False) + "\n").encode()
    with atomic_path(target, needed=len(text)) as tmp:
        tmp.write_bytes(text)
    return Path(target)


def read_json_object(path: str | os.PathLike) -> dict:
    """A JSON file holding an object (a model folder's plans.json / dataset.json); one line naming it otherwise.

    Raises:
        InputNotFoundError: the file is missing.
        SeganypetError: unreadable JSON, or not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: missing (not an nnU-Net model folder?)")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SeganypetError(f"{path}: unreadable JSON ({err})") from None
    if not isinstance(doc, dict):
        raise SeganypetError(f"{path}: must hold a JSON object")
    return doc


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy a file atomically (the source is never modified), verified by length, and return the final path."""
    size = os.stat(source).st_size
    with atomic_path(target, needed=size, verify=False) as tmp:
        shutil.copyfile(source, tmp)
        verify_written(tmp, expected_bytes=size)
    return Path(target)


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target.name), dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
