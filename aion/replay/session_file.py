"""Session file: a day of timestamped Kite WebSocket binary frames, streamable.

The same format is written by ``aion session build`` (from vendor bars) and by ``aion record``
(from a live Kite connection), and served by the replay server.

Format, version 1
-----------------
All container integers are **little-endian** (the Kite frames inside keep their own big-endian
wire format, byte for byte)::

    file    := stream | gzip(stream)          # gzip detected by its magic 1f 8b, not the name
    stream  := MAGIC VERSION FLAGS HLEN HEADER record* [END]
    MAGIC   := b"AIONSESS"                    # 8 bytes
    VERSION := u16 = 1
    FLAGS   := u16 = 0                        # reserved
    HLEN    := u32                            # byte length of HEADER
    HEADER  := UTF-8 JSON object (see below)
    record  := TS_NS u64, LEN u32, FRAME[LEN] # FRAME = one Kite binary WebSocket message:
                                              # u16 packet count, then per packet u16 length +
                                              # packet (a 1-byte heartbeat is a valid FRAME)
    END     := TS_NS = 2**64-1, LEN = 0       # written by close(); a file without it (recording
                                              # killed) still reads, with Session.complete False

``TS_NS`` is the frame's session time in epoch nanoseconds (UTC epoch; view it in IST with
:mod:`aion.market.time`): the exchange time of the ticks for a built session, the receive time
for a live recording. Records are in non-decreasing ``TS_NS`` order (the writer enforces it).

Header keys (JSON):

* ``format`` ``"aion-session"`` and ``version`` ``1`` (added by the writer);
* ``date``: trading date ``"YYYY-MM-DD"`` (IST) — required;
* ``description``: free text, provenance of the data;
* ``instruments``: list of Kite instrument-master rows (column names as in Kite's CSV, expiry
  ``YYYY-MM-DD`` or ``""``) for every token that occurs in the frames;
* ``modes``: ``{"<token>": "full" | "quote" | "ltp"}``, the mode each token was recorded in
  (JSON keys are strings);
* ``start_ns``: session clock start, epoch ns (replay starts its clock here);
* ``tick_timing``: note on how tick times were obtained (exchange-stamped, synthesised, …);
* anything else the producer wants to keep (``source_files``, ``build`` parameters, …).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import struct
import tempfile
import weakref
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, overload

import numpy as np

from aion.instruments.master import InstrumentMaster
from aion.market.time import parse_date

__all__ = [
    "END_TS",
    "FORMAT_VERSION",
    "MAGIC",
    "FrameFile",
    "Session",
    "SessionFileError",
    "SessionReader",
    "SessionWriter",
    "is_session_file",
    "iter_frames",
    "open_session",
    "read_header",
    "read_session",
]

MAGIC = b"AIONSESS"
FORMAT_VERSION = 1
END_TS = 2**64 - 1
_PREAMBLE = struct.Struct("<8sHHI")  # magic, version, flags, header length
_RECORD = struct.Struct("<QI")  # ts_ns, frame length
_MAX_FRAME = 64 * 1024 * 1024
_MAX_HEADER = 512 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
MODES = ("full", "quote", "ltp")


class SessionFileError(ValueError):
    """A session file is malformed: bad magic, unsupported version, bad header or truncation."""


# writing ---------------------------------------------------------------------------------------
class SessionWriter:
    """Stream frames into a session file.

    ``SessionWriter(path, header)`` is a context manager; ``compress`` defaults to
    ``path.endswith(".gz")`` (gzip level 6, mtime 0, so identical input gives identical bytes).
    ``write(ts_ns, frame)`` appends one record: ``ts_ns`` epoch nanoseconds (non-decreasing),
    ``frame`` one Kite binary message. ``close()`` writes the END marker.
    """

    def __init__(
        self, path: str | os.PathLike[str], header: dict[str, Any], *, compress: bool | None = None
    ) -> None:
        self.path = Path(path)
        if compress is None:
            compress = self.path.name.endswith(".gz")
        hdr = _validated_header(header, str(self.path))
        blob = json.dumps(hdr, ensure_ascii=False, separators=(",", ":")).encode()
        self._raw: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        out: Any = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=6, mtime=0)
            if compress
            else self._raw
        )
        self._out: IO[bytes] = out
        self._out.write(_PREAMBLE.pack(MAGIC, FORMAT_VERSION, 0, len(blob)))
        self._out.write(blob)
        self.header = hdr
        self.records = 0
        self.last_ts_ns = -1
        self.closed = False

    def write(self, ts_ns: int, frame: bytes) -> None:
        """Append one frame stamped ``ts_ns`` (epoch ns, >= the previous record's)."""
        if self.closed:
            raise SessionFileError(f"{self.path}: write after close")
        ts = int(ts_ns)
        if not 0 <= ts < END_TS:
            raise SessionFileError(f"{self.path}: ts_ns {ts} out of range")
        if ts < self.last_ts_ns:
            raise SessionFileError(
                f"{self.path}: ts_ns {ts} < previous {self.last_ts_ns} "
                "(records must be in time order)"
            )
        n = len(frame)
        if n == 0 or n > _MAX_FRAME:
            raise SessionFileError(f"{self.path}: frame length {n} not in 1..{_MAX_FRAME}")
        self._out.write(_RECORD.pack(ts, n))
        self._out.write(frame)
        self.records += 1
        self.last_ts_ns = ts

    def flush(self) -> None:
        """Flush buffered records to the OS (a reader then sees every whole record)."""
        self._out.flush()
        if self._out is not self._raw:
            self._raw.flush()

    def close(self) -> None:
        """Write the END marker and close the file (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            self._out.write(_RECORD.pack(END_TS, 0))
        finally:
            if self._out is not self._raw:
                self._out.close()
            self._raw.close()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _validated_header(header: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(header, dict):
        raise SessionFileError(f"{where}: header must be a dict")
    if "date" not in header:
        raise SessionFileError(f"{where}: header lacks 'date' (YYYY-MM-DD)")
    try:
        date = parse_date(str(header["date"]))
    except ValueError as exc:
        raise SessionFileError(f"{where}: header date: {exc}") from None
    modes = {str(k): str(v) for k, v in (header.get("modes") or {}).items()}
    bad = {k: v for k, v in modes.items() if v not in MODES}
    if bad:
        raise SessionFileError(f"{where}: header modes must be one of {MODES}, got {bad}")
    out: dict[str, Any] = {"format": "aion-session", "version": FORMAT_VERSION}
    out.update(header)
    out["date"] = date.isoformat()
    out["modes"] = modes
    out.setdefault("description", "")
    out.setdefault("instruments", [])
    out.setdefault("start_ns", None)
    out.setdefault("tick_timing", "")
    return out


# reading ---------------------------------------------------------------------------------------
def _open_stream(path: Path) -> IO[bytes]:
    try:
        raw = open(path, "rb")  # noqa: SIM115 - returned to caller
    except OSError as exc:
        raise SessionFileError(f"cannot open session file {path}: {exc}") from None
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


class SessionReader:
    """Streaming reader: ``.header`` is parsed on open; iterate for ``(ts_ns, frame)``.

    Raises :class:`SessionFileError` naming the file on bad magic, unsupported version, bad header
    JSON, or a record cut short (truncated file). ``complete`` becomes True once the END marker has
    been read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._f = _open_stream(self.path)
        self.complete = False
        self.records = 0
        try:
            pre = self._read_exact(_PREAMBLE.size, "preamble", allow_eof=False)
            magic, version, _flags, hlen = _PREAMBLE.unpack(pre)
            if magic != MAGIC:
                raise SessionFileError(
                    f"{self.path}: not an aion session file (magic {magic!r}, expected {MAGIC!r})"
                )
            if version != FORMAT_VERSION:
                raise SessionFileError(
                    f"{self.path}: session format version {version} not supported "
                    f"(this aion reads {FORMAT_VERSION})"
                )
            if hlen > _MAX_HEADER:
                raise SessionFileError(f"{self.path}: header length {hlen} implausible")
            blob = self._read_exact(hlen, "header", allow_eof=False)
            try:
                self.header: dict[str, Any] = json.loads(blob.decode())
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise SessionFileError(f"{self.path}: header is not valid JSON: {exc}") from None
            if not isinstance(self.header, dict) or "date" not in self.header:
                raise SessionFileError(f"{self.path}: header is not an object with a 'date'")
        except BaseException:
            self._f.close()
            raise

    def _read_exact(self, n: int, what: str, *, allow_eof: bool) -> bytes:
        try:
            data = self._f.read(n)
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise SessionFileError(
                f"{self.path}: truncated or corrupt compressed data while reading {what} "
                f"after {self.records} records: {exc}"
            ) from None
        if len(data) != n and not (allow_eof and len(data) == 0):
            raise SessionFileError(
                f"{self.path}: truncated: {what} needs {n} bytes, got {len(data)} "
                f"(after {self.records} records)"
            )
        return data

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        try:
            while True:
                rec = self._read_exact(_RECORD.size, "record header", allow_eof=True)
                if not rec:
                    return  # clean EOF without END marker (e.g. recording killed)
                ts, n = _RECORD.unpack(rec)
                if ts == END_TS and n == 0:
                    self.complete = True
                    return
                if n == 0 or n > _MAX_FRAME:
                    raise SessionFileError(
                        f"{self.path}: bad record length {n} after {self.records} records"
                    )
                frame = self._read_exact(n, "frame", allow_eof=False)
                self.records += 1
                yield ts, frame
        finally:
            self.close()

    def close(self) -> None:
        """Close the underlying file."""
        self._f.close()

    def __enter__(self) -> SessionReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_frames(path: str | os.PathLike[str]) -> Iterator[tuple[int, bytes]]:
    """Stream ``(ts_ns, frame)`` records of a session file (ts_ns epoch ns)."""
    yield from SessionReader(path)


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Only the JSON header of a session file."""
    with SessionReader(path) as r:
        return r.header


class FrameFile(Sequence[bytes]):
    """The frames of a session file, read from disk on demand instead of held in memory.

    ``frames[i]`` is one ``os.pread`` of the record's bytes (thread-safe: no shared file
    position), so a replay of an hour at 9,000 instruments (hundreds of MB of frames) keeps
    only the index resident: ``offsets`` and ``lengths`` (int64 (n,), byte offset in the
    uncompressed stream and frame length). A gzip file is first decompressed into an
    anonymous temporary file (deleted on close), whose pages live in the kernel's page cache,
    not in the process. The file descriptor is closed by :meth:`close` or when the object is
    garbage-collected.

    Built by :func:`open_session`; ``IndexError`` for an index out of range,
    :class:`SessionFileError` if the file changed under it (short read).
    """

    def __init__(self, fd: int, offsets: np.ndarray, lengths: np.ndarray, path: Path) -> None:
        self._fd = fd
        self.offsets = offsets
        self.lengths = lengths
        self.path = path
        self._close = weakref.finalize(self, os.close, fd)

    def __len__(self) -> int:
        return len(self.offsets)

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = int(self.lengths[i])
        data = os.pread(self._fd, n, int(self.offsets[i]))
        if len(data) != n:
            raise SessionFileError(f"{self.path}: frame {i} cut short (file changed?)")
        return data

    def heartbeats(self) -> np.ndarray:
        """bool (n,): which records are Kite's 1-byte heartbeat (``is_heartbeat``)."""
        return self.lengths == 1

    def close(self) -> None:
        """Close the file descriptor (further reads raise ``OSError``)."""
        self._close()


def _index_records(f: IO[bytes], path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """One pass over the records of ``f`` (positioned after the header) without keeping frames.

    Returns ``(ts_ns, offsets, lengths, complete)``, each array int64 (n,).
    """
    ts: list[int] = []
    offs: list[int] = []
    lens: list[int] = []
    pos = f.tell()
    complete = False
    while True:
        rec = f.read(_RECORD.size)
        if not rec:
            break
        if len(rec) != _RECORD.size:
            raise SessionFileError(f"{path}: truncated: record header after {len(ts)} records")
        t, n = _RECORD.unpack(rec)
        if t == END_TS and n == 0:
            complete = True
            break
        if n == 0 or n > _MAX_FRAME:
            raise SessionFileError(f"{path}: bad record length {n} after {len(ts)} records")
        pos += _RECORD.size
        f.seek(n, os.SEEK_CUR)  # past EOF is caught by open_session's size check
        ts.append(t)
        offs.append(pos)
        lens.append(n)
        pos += n
    i64 = np.int64
    return np.asarray(ts, i64), np.asarray(offs, i64), np.asarray(lens, i64), complete


def open_session(path: str | os.PathLike[str]) -> Session:
    """A session whose ``frames`` stay on disk (a :class:`FrameFile`); plain or gzip.

    Same header checks and errors as :class:`SessionReader` (``SessionFileError`` naming the
    file); a record cut short by a killed recording is an error here as there.
    """
    src = Path(path)
    with SessionReader(src) as reader:
        header = reader.header
        if isinstance(reader._f, gzip.GzipFile):
            # decompress into an unlinked temp file, then index that
            tmp = tempfile.TemporaryFile(prefix="aion-session-")  # noqa: SIM115 - fd kept
            try:
                shutil.copyfileobj(reader._f, tmp, 1 << 20)
            except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
                tmp.close()
                raise SessionFileError(
                    f"{src}: truncated or corrupt compressed data: {exc}"
                ) from None
            data_f: IO[bytes] = tmp
            data_f.seek(0)
        else:
            data_f = open(src, "rb")  # noqa: SIM115 - fd handed to FrameFile
            data_f.seek(reader._f.tell())
    try:
        size = os.fstat(data_f.fileno()).st_size
        ts, offs, lens, complete = _index_records(data_f, src)
        if len(offs) and int(offs[-1] + lens[-1]) > size:
            raise SessionFileError(f"{src}: truncated: last frame after {len(offs) - 1} records")
        fd = os.dup(data_f.fileno())
    finally:
        data_f.close()
    return Session(
        header=header,
        ts_ns=ts,
        frames=FrameFile(fd, offs, lens, src),
        complete=complete,
        path=src,
    )


@dataclass
class Session:
    """A session: ``header``, ``ts_ns`` (int64 epoch ns, (n,)) and ``frames``.

    ``frames`` is a list of bytes (:func:`read_session`, all in memory) or a
    :class:`FrameFile` (:func:`open_session`, read from disk on demand).
    """

    header: dict[str, Any]
    ts_ns: np.ndarray
    frames: Sequence[bytes]
    complete: bool = True
    path: Path | None = None
    _master: InstrumentMaster | None = field(default=None, repr=False)

    @property
    def date(self) -> dt.date:
        """Trading date (IST) from the header."""
        return parse_date(str(self.header["date"]))

    @property
    def start_ns(self) -> int:
        """Session clock start, epoch ns (header ``start_ns``, else the first frame's time)."""
        s = self.header.get("start_ns")
        if s is not None:
            return int(s)
        return int(self.ts_ns[0]) if len(self.ts_ns) else 0

    @property
    def modes(self) -> dict[int, str]:
        """token -> recorded mode (``"full"``, ``"quote"``, ``"ltp"``)."""
        return {int(k): v for k, v in self.header.get("modes", {}).items()}

    def instruments(self) -> InstrumentMaster:
        """Instrument master of the session's tokens (from the header's embedded rows)."""
        if self._master is None:
            self._master = InstrumentMaster.from_rows(self.header.get("instruments", []))
        return self._master

    def __len__(self) -> int:
        return len(self.frames)


def read_session(path: str | os.PathLike[str]) -> Session:
    """Read a whole session file (plain or gzip) into memory."""
    reader = SessionReader(path)
    ts: list[int] = []
    frames: list[bytes] = []
    for t, f in reader:
        ts.append(t)
        frames.append(f)
    return Session(
        header=reader.header,
        ts_ns=np.asarray(ts, dtype=np.int64),
        frames=frames,
        complete=reader.complete,
        path=Path(path),
    )


def is_session_file(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` starts with the session magic (plain or gzip-compressed)."""
    try:
        with open(path, "rb") as f:
            data = f.read(64)
    except OSError:
        return False
    if data[:2] == _GZIP_MAGIC:
        try:
            with gzip.open(path, "rb") as g:
                data = g.read(len(MAGIC))
        except (OSError, EOFError):
            return False
    return data[: len(MAGIC)] == MAGIC
