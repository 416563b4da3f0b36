"""Per-browser identities: who a dashboard user is when nobody signs in, signed so that none can be made up.

A browser identity is ``browser-<32 hex digits>`` (a random id). The browser keeps
it in a cookie whose value is ``<id>.<signature>``: the signature is HMAC-SHA256 of
the id under a server secret, truncated to 32 hex digits. A cookie whose signature
does not match is ignored (the browser gets a new identity), so an identity can be
neither invented nor guessed.

What it does not do: the cookie is a bearer token, not a login. Whoever holds a
copy of a browser's cookie value *is* that browser's user (sees and cancels its
runs, deletes its models); another browser or a cleared cookie is a new user.
That is why browser identities can never be admins
(:meth:`~nestedae_core.jobs.settings.JobSettings.is_admin`) and why a shared
server should use login.

The secret: ``NESTEDAE_IDENTITY_SECRET`` when set (at least 32 characters), else a
random secret generated once and kept beside the job store
(``<store>.identity-secret``, mode 0600, written atomically and never
overwritten), so every server process on one store accepts the same cookies.
Changing or deleting the secret makes every browser a new user.
"""
from __future__ import annotations

import errno
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError

__all__ = [
    "BROWSER_PREFIX",
    "SECRET_ENV",
    "browser_identity_from_cookie",
    "cookie_for_identity",
    "identity_secret",
    "is_browser_identity",
    "looks_like_browser_identity",
    "new_browser_identity",
    "secret_path",
    "sign_browser_id",
]

logger = logging.getLogger(__name__)

#: Prefix of every browser identity: ``browser-<32 hex digits>``.
BROWSER_PREFIX = "browser-"
#: Environment variable holding the server secret that signs browser identities.
SECRET_ENV = "NESTEDAE_IDENTITY_SECRET"
#: Fewest characters of a secret given in :data:`SECRET_ENV`.
MIN_SECRET_CHARS = 32

_ID_RE = re.compile(r"[0-9a-f]{32}")
_IDENTITY_RE = re.compile(r"browser-[0-9a-f]{32}")
_COOKIE_RE = re.compile(r"(?P<id>[0-9a-f]{32})\.(?P<sig>[0-9a-f]{32})")
_SIG_HEX = 32
_FILE_SECRET_RE = re.compile(r"[0-9a-f]{64,}")


def is_browser_identity(identity: str | None) -> bool:
    """True when ``identity`` is a browser identity (``browser-<32 hex digits>``)."""
    return bool(identity) and _IDENTITY_RE.fullmatch(str(identity)) is not None


def looks_like_browser_identity(text: str | None) -> bool:
    """True for anything that is, or could be mistaken for, a browser identity or its cookie value.

    ``browser-…`` without an ``@`` (any case), a bare 32-hex-digit id, or a cookie
    value ``<id>.<signature>``. Used to refuse such entries as admins.
    """
    value = str(text or "").strip().lower()
    if not value:
        return False
    if value.startswith(BROWSER_PREFIX) and "@" not in value:
        return True
    return _ID_RE.fullmatch(value) is not None or _COOKIE_RE.fullmatch(value) is not None


def sign_browser_id(browser_id: str, secret: bytes) -> str:
    """The cookie value of browser id ``browser_id`` (32 hex digits): ``<id>.<signature>``.

    Raises:
        ValueError: ``browser_id`` is not 32 lowercase hex digits.
    """
    if not _ID_RE.fullmatch(browser_id or ""):
        raise ValueError("a browser id is 32 lowercase hex digits")
    sig = hmac.new(secret, f"nestedae-browser:{browser_id}".encode(), hashlib.sha256).hexdigest()[:_SIG_HEX]
    return f"{browser_id}.{sig}"


def browser_identity_from_cookie(cookie: str | None, secret: bytes) -> str | None:
    """The identity ``browser-<id>`` a cookie value proves, or None when it is absent, malformed or wrongly signed."""
    match = _COOKIE_RE.fullmatch(str(cookie or "").strip())
    if match is None:
        return None
    expected = sign_browser_id(match["id"], secret)
    if not hmac.compare_digest(expected, match.group(0)):
        return None
    return BROWSER_PREFIX + match["id"]


def cookie_for_identity(identity: str, secret: bytes) -> str | None:
    """The signed cookie value of browser identity ``identity``; None for any other identity."""
    if not is_browser_identity(identity):
        return None
    return sign_browser_id(identity[len(BROWSER_PREFIX):], secret)


def new_browser_identity(secret: bytes) -> tuple[str, str]:
    """A fresh random browser identity and its signed cookie value: ``(identity, cookie)``."""
    browser_id = secrets.token_hex(16)
    return BROWSER_PREFIX + browser_id, sign_browser_id(browser_id, secret)


def secret_path(store_path: str | Path) -> Path:
    """Where the generated secret of the job store ``store_path`` is kept: ``<store>.identity-secret`` beside it."""
    path = Path(store_path)
    return path.with_name(path.name + ".identity-secret")


def _read_secret_file(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"cannot read the identity secret {path}: {reason}; fix its permissions or set {SECRET_ENV}") from None
    if not _FILE_SECRET_RE.fullmatch(text):
        raise ConfigError(f"the identity secret {path} is empty or damaged; delete it (a new one is made and every "
                          f"browser becomes a new user) or set {SECRET_ENV}")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("the identity secret %s is readable by others (mode %o); run chmod 600 on it", path, mode & 0o777)
    return text.encode("ascii")


def _create_secret_file(path: Path) -> None:
    """Write a new random secret to ``path`` atomically (temp file, then link); never replaces an existing one."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails when it exists: the first writer wins
        except FileExistsError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
                raise
            if not path.exists():  # no hard links on this file system
                os.rename(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def identity_secret(store_path: str | Path, environ: Mapping[str, str] | None = None) -> bytes:
    """The server secret that signs browser identities (see the module docstring).

    Args:
        store_path: the job store's SQLite file; the generated secret is kept beside it.
        environ: where to read :data:`SECRET_ENV` (default ``os.environ``).

    Raises:
        ConfigError: the variable is too short, or the secret file cannot be read, made or is damaged.
    """
    env = os.environ if environ is None else environ
    given = (env.get(SECRET_ENV) or "").strip()
    if given:
        if len(given) < MIN_SECRET_CHARS:
            raise ConfigError(f"{SECRET_ENV} has {len(given)} characters; use at least {MIN_SECRET_CHARS} random ones "
                              "(e.g. python -c \"import secrets; print(secrets.token_hex(32))\")")
        return given.encode("utf-8")
    path = secret_path(store_path)
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_secret_file(path)
        except OSError as exc:
            raise ConfigError(f"cannot create the identity secret {path}: {exc.strerror or exc}; make its folder "
                              f"writable or set {SECRET_ENV}") from None
        logger.info("identity secret created at %s", path)
    return _read_secret_file(path)
