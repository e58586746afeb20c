"""Kite Connect credentials: ``KITE_API_KEY`` and ``KITE_ACCESS_TOKEN``.

Sources, in order of precedence (DESIGN.md, "Configuration": the environment overrides secrets):

1. the environment variables ``KITE_API_KEY`` and ``KITE_ACCESS_TOKEN``;
2. a secrets file (``kite.secrets_file`` in ``config/aion.yaml``) of ``NAME=VALUE`` lines
   (blank lines and ``#`` comments ignored, optional ``export`` prefix and quotes, as in a
   shell ``.env`` file). The file must be owned by the user running aion and readable by
   nobody else (mode ``0600`` or ``0400``): a group- or world-readable secrets file is refused
   with one line saying how to fix it, because anyone who can read it can trade on the account.

The access token is a secret: it never appears in ``repr``, exceptions or logs. Kite invalidates
access tokens daily (around 06:00-08:00 IST); a fresh one comes from the Kite Connect login
flow (https://kite.trade/docs/connect/v3/user/#login-flow).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ENV_ACCESS_TOKEN",
    "ENV_API_KEY",
    "Credentials",
    "CredentialsError",
    "load_credentials",
    "read_secrets_file",
]

ENV_API_KEY = "KITE_API_KEY"
ENV_ACCESS_TOKEN = "KITE_ACCESS_TOKEN"


class CredentialsError(ValueError):
    """Credentials are missing or unsafe; ``str()`` is one line naming the fix (no secret)."""


@dataclass(frozen=True)
class Credentials:
    """A Kite API key and access token, plus where they came from (``env``, a file path).

    ``repr`` shows the API key (not secret: it appears in Kite's login URL) and masks the token.
    """

    api_key: str
    access_token: str = field(repr=False)
    source: str = "env"

    def __repr__(self) -> str:
        return f"Credentials(api_key={self.api_key!r}, access_token='***', source={self.source!r})"


def read_secrets_file(path: Path) -> dict[str, str]:
    """``NAME=VALUE`` pairs of an owner-only secrets file.

    Raises:
        CredentialsError: the file is missing, not a regular file, owned by someone else,
            readable or writable by group/others, or has a line that is not ``NAME=VALUE``.
    """
    try:
        st = path.stat()
    except OSError as exc:
        raise CredentialsError(
            f"secrets file {path} cannot be read ({exc.strerror}); fix kite.secrets_file"
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise CredentialsError(f"secrets file {path} is not a regular file; fix kite.secrets_file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise CredentialsError(
            f"secrets file {path} is accessible by group or others (mode {mode:04o}); "
            f"refusing it: run chmod 600 {path}"
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise CredentialsError(
            f"secrets file {path} is owned by uid {st.st_uid}, not by you; refusing it"
        )
    out: dict[str, str] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            # never echo the line: it may hold a secret
            raise CredentialsError(f"secrets file {path} line {n}: expected NAME=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[name.strip()] = value
    return out


def load_credentials(
    secrets_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials | None:
    """The Kite credentials from the environment, else the secrets file; None when neither has both.

    Args:
        secrets_file: optional path of an owner-only ``NAME=VALUE`` file (``~`` expanded).
        environ: the environment to read (default ``os.environ``).

    Returns:
        :class:`Credentials`, or None when no source provides both values.

    Raises:
        CredentialsError: the secrets file is unsafe or malformed (see
            :func:`read_secrets_file`), or only one of the two values is set.
    """
    env = os.environ if environ is None else environ
    key = env.get(ENV_API_KEY, "").strip()
    token = env.get(ENV_ACCESS_TOKEN, "").strip()
    source = "env"
    if secrets_file is not None and not (key and token):
        path = Path(secrets_file).expanduser()
        values = read_secrets_file(path)
        key = key or values.get(ENV_API_KEY, "").strip()
        token = token or values.get(ENV_ACCESS_TOKEN, "").strip()
        source = str(path)
    if key and token:
        return Credentials(key, token, source)
    if key or token:
        missing = ENV_ACCESS_TOKEN if key else ENV_API_KEY
        raise CredentialsError(
            f"{missing} is not set (the other Kite credential is); set both in the environment "
            "or in kite.secrets_file"
        )
    return None
