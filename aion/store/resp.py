"""Redis's wire protocol for the store thread: commands packed as RESP text, sent on the
store's own socket, the replies walked for errors.

The protocol is RESP2 (https://redis.io/docs/latest/develop/reference/protocol-spec/): a
command is an array of bulk strings, ``*<n>\r\n`` then ``$<len>\r\n<arg>\r\n`` per
argument (length in bytes). Building the text of a whole flush and encoding it once
(:class:`RespCommands`) is several times cheaper than redis-py's per-command packer; the
replies are walked over their raw bytes by one compiled kernel (:func:`_scan_replies`) that
keeps only the error replies, instead of a Python object per reply.

:class:`RespConnection` is the store thread's own socket to the server a redis-py client
names (TCP, TLS or Unix socket, from the connection pool's public ``connection_class`` and
``connection_kwargs``), authenticated and on the client's database: no redis-py private
attribute is touched.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import numpy as np
import redis
from numba import njit


def bulk(text: str) -> str:
    """One RESP bulk string (length in UTF-8 bytes)."""
    n = len(text) if text.isascii() else len(text.encode())
    return f"${n}\r\n{text}\r\n"


def flat(mapping: dict[str, Any]) -> list[str]:
    """``{f: v}`` -> ``[f, str(v), ...]`` (the field/value arguments of HSET and XADD)."""
    out: list[str] = []
    for k, v in mapping.items():
        out += (k, v if type(v) is str else str(v))
    return out


def pack_command(*args: str) -> str:
    """One command as RESP text (an array of bulk strings)."""
    return f"*{len(args)}\r\n" + "".join(map(bulk, args))


@njit(nogil=True, cache=True)
def _scan_replies(
    buf: np.ndarray, size: int, pos: int, count: int, want: int, errs: np.ndarray, n_err: int
) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """Walk complete RESP2/RESP3 replies in ``buf[pos:size]`` (the protocol spec: a type byte,
    a line ending CRLF, bulk payloads of the stated length, aggregates of the stated count)
    until ``want`` replies are complete; record per reply holding an error (``-`` or ``!``,
    nested in an EXEC array too: the first one) its index and message range in ``errs``
    int64 (want, 3). Returns (replies complete, position after them, errors recorded); a
    reply cut by the end of the data is left for the next call."""
    while count < want:
        p = pos
        pending = 1
        err_s = -1
        err_e = -1
        while pending > 0:
            if p >= size:
                return count, pos, n_err
            t = buf[p]
            q = p + 1
            while q + 1 < size and not (buf[q] == 13 and buf[q + 1] == 10):
                q += 1
            if q + 1 >= size:
                return count, pos, n_err
            pending -= 1
            num = 0
            neg = False
            for k in range(p + 1, q):
                c = buf[k]
                if c == 45:
                    neg = True
                elif 48 <= c <= 57:
                    num = num * 10 + (c - 48)
            if neg:
                num = -num
            if t == 45 and err_s < 0:  # '-' simple error
                err_s = p + 1
                err_e = q
            if t == 36 or t == 61 or t == 33:  # '$' bulk, '=' verbatim, '!' bulk error
                if num < 0:
                    p = q + 2
                else:
                    if q + 2 + num + 2 > size:
                        return count, pos, n_err
                    if t == 33 and err_s < 0:
                        err_s = q + 2
                        err_e = q + 2 + num
                    p = q + 2 + num + 2
            elif t == 42 or t == 126 or t == 62:  # '*' array, '~' set, '>' push
                if num > 0:
                    pending += num
                p = q + 2
            elif t == 37 or t == 124:  # '%' map, '|' attributes
                if num > 0:
                    pending += 2 * num
                p = q + 2
            else:
                p = q + 2
        if err_s >= 0:
            errs[n_err, 0] = count
            errs[n_err, 1] = err_s
            errs[n_err, 2] = err_e
            n_err += 1
        count += 1
        pos = p
    return count, pos, n_err


def read_errors(sock: socket.socket, n_replies: int) -> list[tuple[int, redis.ResponseError]]:
    """Read ``n_replies`` replies from ``sock`` and return only the error ones, as (reply
    index, ``redis.ResponseError``); an EXEC reply counts as one (its first queued error).
    The replies are walked by :func:`_scan_replies` over the raw bytes: no Python object per
    reply, which made a flush's replies a fifth of its time.

    Raises ``redis.TimeoutError`` (the socket's timeout) or ``redis.ConnectionError``.
    """
    buf = bytearray(max(1 << 16, 8 * n_replies))
    size = pos = count = n_err = 0
    errs = np.zeros((n_replies, 3), np.int64)
    try:
        while count < n_replies:
            if size == len(buf):
                buf.extend(bytes(len(buf)))
            view = memoryview(buf)[size:]
            n = sock.recv_into(view)
            view.release()
            if n == 0:
                raise redis.ConnectionError("Redis closed the connection")
            size += n
            count, pos, n_err = _scan_replies(
                np.frombuffer(buf, np.uint8), size, pos, count, n_replies, errs, n_err
            )
    except TimeoutError as exc:  # socket.timeout
        raise redis.TimeoutError(f"reading replies: {exc}") from exc
    except OSError as exc:
        raise redis.ConnectionError(f"reading replies: {exc}") from exc
    return [
        (int(i), redis.ResponseError(bytes(buf[s:e]).decode(errors="replace")))
        for i, s, e in errs[:n_err].tolist()
    ]


FIELD_HEADS: dict[str, str] = {}
"""RESP bulk-string text of hash field names seen (a bounded set: aion's field names)."""
_MAX_FIELD_HEADS = 8192


def field_head(name: str) -> str:
    """``$<len>\\r\\n<name>\\r\\n``, remembered in :data:`FIELD_HEADS` while it has room."""
    head = f"${len(name)}\r\n{name}\r\n"
    if len(FIELD_HEADS) < _MAX_FIELD_HEADS:
        FIELD_HEADS[name] = head
    return head


class RespCommands:
    """Redis commands packed into one RESP2 request buffer (the Redis protocol spec,
    https://redis.io/docs/latest/develop/reference/protocol-spec/: an array of bulk strings
    per command). Building text and encoding once is several times cheaper than redis-py's
    per-command packer; the server cannot tell the difference.

    Attributes:
        count: commands added (one reply each).
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._packed: list[bytes] = []  # parts already bytes, in order before _parts
        self.count = 0
        self.size = 0  # characters appended since the last take()

    def command(self, *args: str) -> None:
        """Append one command (``"EXPIRE", key, "3600"``)."""
        self.append(pack_command(*args))

    def append(self, chunk: str | bytes, commands: int = 1) -> None:
        """Append ``commands`` commands already packed (:func:`aion.store.shadow.hset_changed`;
        bytes: RESP rendered by :mod:`aion.store.columnar`)."""
        if type(chunk) is bytes:
            if self._parts:
                self._packed.append("".join(self._parts).encode())
                self._parts = []
            self._packed.append(chunk)
        else:
            self._parts.append(chunk)  # type: ignore[arg-type]
        self.size += len(chunk)
        self.count += commands

    def packed(self) -> bytes:
        """The request buffer (UTF-8) of the commands appended since the last :meth:`take`."""
        if not self._packed:
            return "".join(self._parts).encode()
        return b"".join([*self._packed, "".join(self._parts).encode()])

    def take(self) -> bytes:
        """:meth:`packed`, then forget those commands' text (``count`` keeps counting)."""
        out = self.packed()
        self._parts = []
        self._packed = []
        self.size = 0
        return out


STREAM_CHARS = 1 << 18
"""A flush sends its packed commands every this many characters (about 256 KiB) while it packs
the rest: Redis, on the other core, executes the first commands meanwhile."""


_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class RespConnection:
    """The store thread's own connection to the Redis server of a redis-py client.

    The address, credentials, database, timeouts and TLS settings are read from the client's
    connection pool (its public ``connection_class`` and ``connection_kwargs``, as
    :func:`aion.store.server.connect` built them): TCP ``host``/``port``, a Unix socket
    ``path``, or TLS (``redis.SSLConnection``: ``ssl_cert_reqs``, ``ssl_ca_certs``,
    ``ssl_ca_path``, ``ssl_ca_data``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_password``,
    ``ssl_check_hostname``, ``ssl_min_version``, ``ssl_ciphers``; the server's certificate is
    verified against the given CAs, else the system's). On connect it sends ``AUTH`` (ACL user
    and password, or the password alone) and ``SELECT`` when the database is not 0, and checks
    their replies. The socket speaks RESP2 and is kept open between flushes; any error closes
    it and the next :meth:`send` connects again.

    Attributes:
        sent: bytes sent on this connection object since it was made (all sockets).

    Raises (from :meth:`send` and :meth:`errors`): ``redis.ConnectionError`` (refused, reset,
    closed, TLS or authentication failure: ``redis.AuthenticationError``) or
    ``redis.TimeoutError`` (the client's ``socket_timeout``).
    """

    def __init__(self, client: redis.Redis) -> None:
        pool = client.connection_pool
        self._kwargs: dict[str, Any] = dict(pool.connection_kwargs)
        self._tls = issubclass(pool.connection_class, redis.SSLConnection)
        self._sock: socket.socket | None = None
        self.sent = 0

    def _timeout(self, name: str) -> float | None:
        t = self._kwargs.get(name)
        return None if t is None else float(t)

    def _ssl_context(self) -> ssl.SSLContext:
        kw = self._kwargs
        reqs = kw.get("ssl_cert_reqs", "required")
        verify = _CERT_REQS[reqs.lower()] if isinstance(reqs, str) else ssl.VerifyMode(reqs)
        ctx = ssl.create_default_context(
            cafile=kw.get("ssl_ca_certs"),
            capath=kw.get("ssl_ca_path"),
            cadata=kw.get("ssl_ca_data"),
        )
        check = bool(kw.get("ssl_check_hostname", True))
        ctx.check_hostname = check and verify != ssl.CERT_NONE
        ctx.verify_mode = verify
        if kw.get("ssl_certfile"):
            ctx.load_cert_chain(kw["ssl_certfile"], kw.get("ssl_keyfile"), kw.get("ssl_password"))
        if kw.get("ssl_min_version") is not None:
            ctx.minimum_version = kw["ssl_min_version"]
        if kw.get("ssl_ciphers"):
            ctx.set_ciphers(kw["ssl_ciphers"])
        return ctx

    def _open(self) -> socket.socket:
        kw = self._kwargs
        connect_timeout = self._timeout("socket_connect_timeout") or self._timeout("socket_timeout")
        try:
            if "path" in kw:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(connect_timeout)
                sock.connect(kw["path"])
            else:
                host, port = kw.get("host", "localhost"), int(kw.get("port", 6379))
                sock = socket.create_connection((host, port), connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._tls:
                    sock = self._ssl_context().wrap_socket(sock, server_hostname=host)
            sock.settimeout(self._timeout("socket_timeout"))
        except TimeoutError as exc:
            raise redis.TimeoutError(f"connecting to Redis: {exc}") from exc
        except OSError as exc:
            raise redis.ConnectionError(f"connecting to Redis: {exc}") from exc
        hello = self._handshake()
        if hello:
            try:
                sock.sendall(hello[0].encode())
                errors = read_errors(sock, hello[1])
            except BaseException:
                sock.close()
                raise
            if errors:
                sock.close()
                raise redis.AuthenticationError(
                    f"Redis refused the store connection: {errors[0][1]}"
                )
        return sock

    def _handshake(self) -> tuple[str, int] | None:
        """AUTH and SELECT as RESP text and their reply count, or None when neither is due."""
        kw = self._kwargs
        username, password = kw.get("username"), kw.get("password")
        provider = kw.get("credential_provider")
        if provider is not None:
            creds = provider.get_credentials()
            username, password = (None, creds[0]) if len(creds) == 1 else creds
        text, n = "", 0
        if password is not None:
            text += pack_command("AUTH", *((username,) if username else ()), password)
            n += 1
        if int(kw.get("db") or 0):
            text += pack_command("SELECT", str(int(kw["db"])))
            n += 1
        return (text, n) if n else None

    def send(self, packed: bytes) -> None:
        """Send packed commands, connecting first when not connected."""
        if not packed:
            return
        if self._sock is None:
            self._sock = self._open()
        try:
            self._sock.sendall(packed)
        except TimeoutError as exc:
            self.close()
            raise redis.TimeoutError(f"sending commands: {exc}") from exc
        except OSError as exc:
            self.close()
            raise redis.ConnectionError(f"sending commands: {exc}") from exc
        self.sent += len(packed)

    def errors(self, n_replies: int) -> list[tuple[int, redis.ResponseError]]:
        """Read ``n_replies`` replies of the commands sent; only the error ones (reply index,
        error), an EXEC reply as one (its first queued error). Closes the socket when the
        replies cannot be read (the next :meth:`send` reconnects)."""
        if n_replies == 0:
            return []
        if self._sock is None:
            raise redis.ConnectionError("no commands were sent on this connection")
        try:
            return read_errors(self._sock, n_replies)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the socket (the next :meth:`send` connects again)."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
