"""The checkpoint format, shared by disk checkpoints and in-memory blobs.

A checkpoint is a directory::

    checkpoint_000004/
        .trainable_checkpoint.json   metadata, written last
        <the files save_checkpoint() wrote>
        checkpoint.pkl               if save_checkpoint() returned a dict

Metadata fields (JSON object):

``format``
    always ``"trainable-checkpoint"``.
``version``
    :data:`FORMAT_VERSION`. A reader rejects a newer version with
    :class:`~trainable.errors.CheckpointError`.
``kind``
    ``"path"`` when ``save_checkpoint`` returned a path inside the
    directory, ``"dict"`` when it returned a dict (pickled to
    ``checkpoint.pkl``).
``path``
    the returned path relative to the checkpoint directory (``"."`` for the
    directory itself).
``iteration``, ``time_total_s``, ``timesteps_total``, ``episodes_total``
    the Trainable's counters when it was saved; restoring sets them back.
``files``
    a map of every file's relative path to its size in bytes, checked on
    restore so that a truncated checkpoint is reported instead of used.

Directories are written under a hidden staging name (``.checkpoint_*.tmp-*``)
and renamed into place once the metadata is written, so a crash never leaves
a directory named ``checkpoint_*`` that is incomplete.

An in-memory blob (what ``save_to_object`` returns) packs one checkpoint
directory into a single ``bytes`` value::

    8 bytes   magic b"TRNBLOB1"
    8 bytes   little-endian length N of the header
    N bytes   header: a pickle (protocol 5) of {"version", "metadata",
              "files": [(relative path, size), ...], "dirs": [...]}
    ...       the file contents, concatenated in header order

Checkpoints are pickles: loading one can run arbitrary code, so load only
checkpoints you trust.
"""

import json
import logging
import os
import pickle
import shutil
import struct
import tempfile
import uuid
from typing import Any, Dict, List, Tuple

from trainable.errors import CheckpointError

logger = logging.getLogger(__name__)

FORMAT_NAME = "trainable-checkpoint"
FORMAT_VERSION = 1
METADATA_FILE = ".trainable_checkpoint.json"
DICT_FILE = "checkpoint.pkl"
DIR_PREFIX = "checkpoint_"
STAGING_PREFIX = ".checkpoint_"
BLOB_MAGIC = b"TRNBLOB1"
_LENGTH = struct.Struct("<Q")


def checkpoint_dir_name(iteration: int) -> str:
    """Return the directory name of the checkpoint taken at ``iteration``."""
    return f"{DIR_PREFIX}{iteration:06d}"


def make_staging_dir(parent: str, iteration: int) -> str:
    """Create and return a hidden directory to write a checkpoint into."""
    os.makedirs(parent, exist_ok=True)
    name = f".{checkpoint_dir_name(iteration)}.tmp-{uuid.uuid4().hex[:8]}"
    path = os.path.join(parent, name)
    os.mkdir(path)
    return path


def remove_staging_dirs(parent: str) -> None:
    """Delete staging directories that a crashed process left behind."""
    try:
        names = os.listdir(parent)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith(STAGING_PREFIX) and ".tmp-" in name:
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def write_user_checkpoint(
    staging_dir: str, returned: Any, counters: Dict[str, Any]
) -> None:
    """Record what ``save_checkpoint`` returned, then write the metadata.

    Args:
        staging_dir: the directory ``save_checkpoint`` was given.
        returned: its return value: a path inside ``staging_dir`` or a dict.
        counters: ``iteration``, ``time_total_s``, ``timesteps_total`` and
            ``episodes_total`` of the Trainable.

    Raises:
        CheckpointError: ``returned`` is neither a dict nor a path inside
            ``staging_dir``.
    """
    if isinstance(returned, dict):
        with open(os.path.join(staging_dir, DICT_FILE), "wb") as f:
            pickle.dump(returned, f, protocol=pickle.HIGHEST_PROTOCOL)
        kind, relpath = "dict", "."
    elif isinstance(returned, (str, os.PathLike)):
        kind, relpath = "path", _relative_inside(staging_dir, returned)
    elif returned is None:
        # Ray Tune accepts None and treats the directory as the checkpoint.
        kind, relpath = "path", "."
    else:
        raise CheckpointError(
            f"save_checkpoint() returned {type(returned).__name__} "
            f"{returned!r:.80}; return a dict, or a path inside the "
            f"directory it was given ({staging_dir})."
        )
    metadata = dict(counters)
    metadata.update(
        format=FORMAT_NAME,
        version=FORMAT_VERSION,
        kind=kind,
        path=relpath,
        files=_list_files(staging_dir),
    )
    _write_json_atomic(os.path.join(staging_dir, METADATA_FILE), metadata)


def _relative_inside(directory: str, path: "os.PathLike[str] | str") -> str:
    directory = os.path.realpath(directory)
    full = os.path.realpath(os.path.join(directory, os.fspath(path)))
    if full != directory and not full.startswith(directory + os.sep):
        raise CheckpointError(
            f"save_checkpoint() returned the path {os.fspath(path)!r}, which "
            f"is outside the checkpoint directory {directory!r} it was "
            f"given. Write the checkpoint files inside that directory and "
            f"return its path or the path of a file in it."
        )
    if not os.path.exists(full):
        raise CheckpointError(
            f"save_checkpoint() returned the path {os.fspath(path)!r}, "
            f"which does not exist. Write the file before returning it."
        )
    return os.path.relpath(full, directory)


def _list_files(directory: str) -> Dict[str, int]:
    sizes = {}
    for root, _, files in os.walk(directory):
        for name in files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, directory)
            if rel != METADATA_FILE:
                sizes[rel] = os.path.getsize(full)
    return sizes


def _write_json_atomic(path: str, data: Dict[str, Any]) -> None:
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def commit(staging_dir: str, final_dir: str) -> None:
    """Move a finished staging directory to its final name.

    A directory already at ``final_dir`` is replaced. That happens only when
    a trial restarted from an earlier checkpoint reaches the same iteration
    again, and the older directory belongs to the discarded history.
    """
    if os.path.exists(final_dir):
        trash = f"{staging_dir}.old"
        os.rename(final_dir, trash)
        os.rename(staging_dir, final_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(staging_dir, final_dir)


def find_checkpoint_dir(path: str) -> str:
    """Return the checkpoint directory that contains ``path``.

    ``path`` may be the directory itself or a file or folder inside it, as
    returned by ``Trainable.save()``.

    Raises:
        CheckpointError: ``path`` does not exist or is not inside a
            checkpoint written by this package.
    """
    if not os.path.exists(path):
        raise CheckpointError(
            f"Checkpoint path {path!r} does not exist. Pass the path that "
            f"save() returned, or a checkpoint_* directory of a trial."
        )
    current = os.path.abspath(path)
    if os.path.isfile(current):
        current = os.path.dirname(current)
    for _ in range(32):
        if os.path.isfile(os.path.join(current, METADATA_FILE)):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    raise CheckpointError(
        f"{path!r} is not inside a checkpoint written by trainable: no "
        f"{METADATA_FILE} file was found in it or its parents. Pass the "
        f"path that save() returned, or a checkpoint_* directory."
    )


def read_metadata(checkpoint_dir: str) -> Dict[str, Any]:
    """Read and check the metadata of a checkpoint directory.

    Raises:
        CheckpointError: the metadata is missing, unreadable, of an unknown
            version, or a listed file is missing or has the wrong size.
    """
    meta_path = os.path.join(checkpoint_dir, METADATA_FILE)
    try:
        with open(meta_path) as f:
            metadata = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(
            f"Checkpoint {checkpoint_dir!r} has no {METADATA_FILE}; it is "
            f"incomplete or was not written by trainable."
        ) from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"Checkpoint {checkpoint_dir!r} has unreadable metadata "
            f"({exc}); the checkpoint is corrupt. Use an earlier one."
        ) from None
    if not isinstance(metadata, dict) or metadata.get("format") != (
        FORMAT_NAME
    ):
        raise CheckpointError(
            f"{meta_path!r} is not trainable checkpoint metadata."
        )
    version = metadata.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"Checkpoint {checkpoint_dir!r} has format version {version!r}, "
            f"but this release reads versions up to {FORMAT_VERSION}. "
            f"Upgrade trainable to load it."
        )
    _check_files(checkpoint_dir, metadata.get("files", {}))
    return metadata


def _check_files(checkpoint_dir: str, sizes: Dict[str, int]) -> None:
    for rel, size in sizes.items():
        full = os.path.join(checkpoint_dir, rel)
        try:
            actual = os.path.getsize(full)
        except OSError:
            raise CheckpointError(
                f"Checkpoint {checkpoint_dir!r} is missing its file {rel!r}; "
                f"the checkpoint is corrupt. Use an earlier one."
            ) from None
        if actual != size:
            raise CheckpointError(
                f"Checkpoint file {full!r} has {actual} bytes but was "
                f"written with {size}; the checkpoint is truncated or "
                f"corrupt. Use an earlier one."
            )


def load_user_checkpoint(checkpoint_dir: str) -> Tuple[Any, Dict[str, Any]]:
    """Return the value to pass to ``load_checkpoint`` and the metadata."""
    metadata = read_metadata(checkpoint_dir)
    if metadata["kind"] == "dict":
        path = os.path.join(checkpoint_dir, DICT_FILE)
        try:
            with open(path, "rb") as f:
                return pickle.load(f), metadata
        except Exception as exc:
            raise CheckpointError(
                f"Could not unpickle {path!r}: {type(exc).__name__}: {exc}. "
                f"The checkpoint is corrupt, or it needs a module that "
                f"this process cannot import."
            ) from exc
    return os.path.normpath(os.path.join(checkpoint_dir, metadata["path"])), (
        metadata
    )


def pack_dir(checkpoint_dir: str) -> bytes:
    """Pack a checkpoint directory, metadata included, into one blob."""
    metadata = read_metadata(checkpoint_dir)
    files: List[Tuple[str, int]] = []
    dirs: List[str] = []
    for root, subdirs, names in os.walk(checkpoint_dir):
        for name in subdirs:
            dirs.append(os.path.relpath(os.path.join(root, name),
                                        checkpoint_dir))
        for name in names:
            full = os.path.join(root, name)
            files.append((os.path.relpath(full, checkpoint_dir),
                          os.path.getsize(full)))

    header = pickle.dumps(
        {"version": FORMAT_VERSION, "metadata": metadata, "files": files,
         "dirs": dirs},
        protocol=5,
    )
    # Read every file straight into one preallocated buffer: a large
    # checkpoint is copied once, from the page cache into the blob.
    start = len(BLOB_MAGIC) + _LENGTH.size + len(header)
    blob = bytearray(start + sum(size for _, size in files))
    blob[:start] = BLOB_MAGIC + _LENGTH.pack(len(header)) + header
    view = memoryview(blob)
    offset = start
    for rel, size in files:
        with open(os.path.join(checkpoint_dir, rel), "rb") as f:
            if f.readinto(view[offset:offset + size]) != size:
                raise CheckpointError(
                    f"Checkpoint file {rel!r} in {checkpoint_dir!r} changed "
                    f"size while it was packed.")
        offset += size
    return blob


def blob_metadata(blob: bytes) -> Dict[str, Any]:
    """Return the checkpoint metadata stored in a blob."""
    return _read_blob_header(memoryview(blob))[0]["metadata"]


def _read_blob_header(view: memoryview) -> Tuple[Dict[str, Any], int]:
    if bytes(view[:8]) != BLOB_MAGIC:
        raise CheckpointError(
            "The object is not a checkpoint blob made by save_to_object() "
            "(wrong magic bytes)."
        )
    (length,) = _LENGTH.unpack(view[8:16])
    try:
        header = pickle.loads(view[16:16 + length])
    except Exception as exc:
        raise CheckpointError(
            f"The checkpoint blob header is corrupt: {exc}"
        ) from None
    if header.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"The checkpoint blob has format version {header['version']}, "
            f"newer than {FORMAT_VERSION}; upgrade trainable to load it."
        )
    return header, 16 + length


def unpack_blob(blob: bytes, target_dir: str) -> None:
    """Write the files of a blob into ``target_dir`` (which must exist)."""
    view = memoryview(blob)
    header, offset = _read_blob_header(view)
    expected = offset + sum(size for _, size in header["files"])
    if len(view) != expected:
        raise CheckpointError(
            f"The checkpoint blob has {len(view)} bytes but its header "
            f"describes {expected}; it is truncated or corrupt."
        )
    for rel in header["dirs"]:
        os.makedirs(os.path.join(target_dir, rel), exist_ok=True)
    for rel, size in header["files"]:
        full = os.path.join(target_dir, rel)
        if os.path.isabs(rel) or ".." in rel.split(os.sep):
            raise CheckpointError(
                f"The checkpoint blob names the file {rel!r}, outside its "
                f"directory; refusing to unpack it."
            )
        with open(full, "wb") as f:
            f.write(view[offset:offset + size])
        offset += size


def new_temp_dir(prefix: str = "trainable-restore-") -> str:
    """Create a fresh temporary directory, as the object-store emulation
    restores every blob somewhere new."""
    return tempfile.mkdtemp(prefix=prefix)


def copy_tree_into(source: str, target: str) -> None:
    """Copy the contents of ``source`` into the existing ``target``,
    leaving out checkpoint metadata."""
    for name in os.listdir(source):
        if name == METADATA_FILE:
            continue
        src = os.path.join(source, name)
        dst = os.path.join(target, name)
        if os.path.isdir(src):
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
