"""File helpers: strict JSONL reading with useful errors, atomic writes, hashing, strict JSON.

Everything rrbench writes goes through :func:`atomic_write_text` / :func:`atomic_dir` so an interrupted run never
leaves a half-written file that a later step could mistake for a finished one.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from rrbench.util.errors import TaskSpecError, UsageError
from rrbench.util.faults import kill_point

#: Longest JSONL line rrbench reads: one post, query or judgement per line never comes near it, and the bound keeps
#: a wrong or hostile file (one endless line) from exhausting memory.
MAX_LINE_BYTES = 16 << 20


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _open_bytes(path: Path) -> Any:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_jsonl(path: str | Path, error: type[Exception] = TaskSpecError) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` from a ``.jsonl`` or ``.jsonl.gz`` file, strictly UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    try:
        with _open_bytes(path) as handle:
            for number, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 1), b""), start=1):
                if len(raw) > MAX_LINE_BYTES:
                    raise error(f"{path} line {number}: longer than {MAX_LINE_BYTES // (1 << 20)} MiB "
                                f"(a line holds one post or query; is this the right file?)")
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise error(f"{path} line {number}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
                if number == 1:
                    line = line.removeprefix("\ufeff")  # a byte-order mark some editors write: harmless
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise error(f"{path} line {number}: malformed JSON: {exc.msg}") from None
                if not isinstance(obj, dict):
                    raise error(f"{path} line {number}: expected a JSON object, got {type(obj).__name__}")
                yield number, obj
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise error(f"{path}: cannot read: {exc}") from None


#: Deepest nesting a JSON document may have. rrbench's own files nest a few levels; the bound turns a hostile
#: document (200,000 nested brackets) into a one-line error instead of a RecursionError.
MAX_JSON_DEPTH = 64


def _json_depth(text: str) -> int:
    """Deepest bracket nesting of ``text``, outside strings (a linear scan, before the recursive parser runs)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _reject_constant(token: str) -> Any:
    raise ValueError(f"non-finite number {token} is not valid JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads_strict_json(text: str, where: str, error: type[Exception] = UsageError) -> Any:
    """The one strict JSON parser of rrbench: JSON as every parser reads it alike. NaN/Infinity tokens, duplicate
    keys and nesting deeper than :data:`MAX_JSON_DEPTH` are one-line ``error``s naming ``where``."""
    if _json_depth(text) > MAX_JSON_DEPTH:
        raise error(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise error(f"{where}: not strict JSON: {exc}") from None


def read_json(path: str | Path, error: type[Exception] = UsageError) -> Any:
    """A JSON file through :func:`loads_strict_json`, with strict UTF-8; one-line errors naming the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    return loads_strict_json(text, str(path), error)


def read_json_object(path: str | Path, error: type[Exception] = UsageError) -> dict[str, Any]:
    """A JSON file that must hold one object (a record, a checkpoint's metadata, a config)."""
    obj = read_json(path, error)
    if not isinstance(obj, dict):
        raise error(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def write_jsonl_gz(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Write rows as gzip-compressed JSONL with a fixed mtime, so the same rows always give the same bytes."""
    path = Path(path)
    payload = "".join(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n" for row in rows).encode("utf-8")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(payload)
    os.replace(tmp, path)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_stale(folder: Path, name: str) -> None:
    """Remove temporaries of ``name`` (``.<name>.<pid>.*.tmp`` files, ``.<name>.<pid>.*.partial`` folders) left by
    a process that no longer runs: a killed writer (kill -9, power cut) cannot clean up after itself, so the next
    writer of the same path does. Temporaries of live processes are left alone (they may still finish)."""
    if not folder.is_dir():
        return
    for leftover in folder.glob(f".{glob_escape(name)}.*"):
        parts = leftover.name[len(name) + 2:].split(".", 1)
        if len(parts) < 2 or not parts[0].isdigit() or not leftover.name.endswith((".tmp", ".partial")):
            continue
        if _pid_alive(int(parts[0])):
            continue
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def atomic_write(path: str | Path, writer: Callable[[BinaryIO], object]) -> None:
    """Write a file through ``writer(handle)`` under a temporary name, fsync, then rename it into place.

    The temporary name carries the writer's pid, so a later writer can tell a dead process's leftover from a live
    one's work in progress (:func:`sweep_stale`)."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            writer(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the user's usual permissions
        kill_point("write")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


@contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Build a directory under a temporary name and rename it into place only if the block succeeds.

    Two processes writing the same folder: the first rename wins, the second fails with one line and leaves
    nothing behind. A folder left half-built by a killed process is hidden (``.<name>.<pid>.*.partial``) and
    removed by the next writer of the same folder."""

    final = Path(final)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise UsageError(f"{final}: output directory exists and is not empty")
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(final.parent, final.name)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.{os.getpid()}.", suffix=".partial"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
        kill_point("dir")
        if final.exists():
            final.rmdir()
        os.replace(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if final.exists() and any(final.iterdir()) and exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise UsageError(f"{final}: another process wrote this output folder first; nothing was written "
                             f"by this one") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _reject_non_finite(obj: Any, where: str = "$") -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"non-finite number {obj!r} at {where}: results must be strict JSON")
    if isinstance(obj, dict):
        for key, value in obj.items():
            _reject_non_finite(value, f"{where}.{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _reject_non_finite(value, f"{where}[{i}]")


def strict_json_dumps(obj: Any, indent: int | None = 2) -> str:
    """JSON that every parser accepts: NaN/Infinity are errors, not tokens."""
    _reject_non_finite(obj)
    return json.dumps(obj, indent=indent, allow_nan=False, ensure_ascii=False, sort_keys=False) + "\n"


def canonical_hash(obj: Any) -> str:
    """sha256 of the canonical JSON form of ``obj`` (sorted keys, no whitespace)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False, default=str)
    return sha256_text(text)
