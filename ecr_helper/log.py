"""The log file: where details and tracebacks go instead of Docker's output.

One size-capped rotating file (1 MiB, two old copies: the incumbent's debug
log grows forever) in the user's log folder, created 0600 in a 0700 folder.
Only xecr's own logger writes to it; botocore's debug output, which contains
credentials, is never attached. A filter removes every secret registered with
:func:`register_secret`, and anything shaped like an AWS secret or token,
from each record before it is written. Nothing here ever raises: a log that
cannot be opened is silently dropped.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

LOGGER = "xecr"
MAX_BYTES = 1 << 20
BACKUPS = 2
REDACTED = "***"

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
# Secret access keys (40 chars), session tokens and ECR tokens (long base64),
# and the "AWS:<password>" form.
# A "key: value" match keeps its key ("password=***"), so the line stays readable.
_SHAPES = re.compile(
    r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
    r"|[A-Za-z0-9/+=_-]{100,}"
    # `get-login-password: 'HOST' is neither...` names xecr's command, not a password.
    r"|(?P<key>(?i:(?<!login-)(?:secret|password|passwd)\w*[\"']?\s*[:=]\s*[\"']?))"
    r"[^\s\"',}]{6,}"
    # "token: <value>" is also how xecr's own messages read ("cached token:
    # AssumeRole denied..."), so a token needs a value shaped like one.
    r"|(?P<tkey>(?i:(?:token|credential)\w*[\"']?\s*[:=]\s*[\"']?))[A-Za-z0-9/+=_-]{16,}"
)


def _replace(match: re.Match[str]) -> str:
    return (match.group("key") or match.group("tkey") or "") + REDACTED


def register_secret(value: str | None) -> None:
    """Make sure ``value`` never reaches the log file."""
    if value and len(value) >= 8:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _SHAPES.sub(_replace, text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            message = f"{message}\n{formatted}"
            record.exc_info = None
            record.exc_text = None
        record.msg = redact(message)
        record.args = None
        return True


class _PrivateRotatingHandler(logging.handlers.RotatingFileHandler):
    """Opens without following a symlink, refuses a file that is not safely ours,
    and on the first write that fails (a full disk) says so once and stops."""

    broken = False

    def _open(self):  # type: ignore[no-untyped-def]
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.baseFilename, flags, 0o600)
        except OSError as exc:
            import errno

            if exc.errno == errno.ELOOP:
                raise _Refused(f"{self.baseFilename}: it is a symlink") from None
            raise
        try:
            problem = _unsafe(os.fstat(fd), "log file")
            if problem:
                raise _Refused(f"{self.baseFilename}: {problem}")
        except BaseException:
            os.close(fd)
            raise
        return os.fdopen(fd, "a", encoding="utf-8", errors="replace")

    def emit(self, record: logging.LogRecord) -> None:
        if not self.broken:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if self.broken:
            return
        self.broken = True
        import sys

        exc = sys.exc_info()[1]
        why = str(exc) if isinstance(exc, _Refused) else None
        why = why or getattr(exc, "strerror", None) or type(exc).__name__
        _say(f"xecr: cannot write the log {self.baseFilename} ({why}); logging stops")


class _Refused(OSError):
    """A log folder or file that is not safely ours."""


def _unsafe(info: os.stat_result, what: str) -> str | None:
    """Why xecr will not write through this file or folder, or None when it may."""
    import stat

    kind_ok = stat.S_ISDIR(info.st_mode) if what == "log folder" else stat.S_ISREG(info.st_mode)
    if not kind_ok:
        return f"not a {'folder' if what == 'log folder' else 'regular file'}"
    if info.st_uid not in (os.geteuid(), 0):
        return f"owned by uid {info.st_uid}, not by you or root"
    if info.st_mode & 0o022:
        return f"mode {stat.S_IMODE(info.st_mode):04o} lets others write it"
    return None


def _say(line: str) -> None:
    """One line on stderr: the log cannot report its own failure."""
    import sys

    try:
        if sys.stderr is not None:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _check_folder(folder: str) -> None:
    try:
        info = os.lstat(folder)
    except OSError as exc:
        raise _Refused(f"{folder}: {exc.strerror}") from None
    import stat

    if stat.S_ISLNK(info.st_mode):
        raise _Refused(f"{folder}: it is a symlink")
    problem = _unsafe(info, "log folder")
    if problem:
        raise _Refused(f"{folder}: {problem}")


_configured = False


def setup(env: Mapping[str, str], folder: str | None = None) -> logging.Logger:
    """Attach the file handler once. Level from ``XECR_LOG_LEVEL`` (default INFO)."""
    global _configured
    logger = logging.getLogger(LOGGER)
    if _configured:
        return logger
    _configured = True
    logger.propagate = False
    level = env.get("XECR_LOG_LEVEL", "INFO").upper()
    logger.setLevel(level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "INFO")
    try:
        from ecr_helper import paths

        folder = folder or paths.log_dir(env)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        # Root with another user's HOME (sudo -E) must not write where that
        # user points it: a planted symlink, or a folder or file she owns.
        _check_folder(folder)
        handler = _PrivateRotatingHandler(
            os.path.join(folder, "xecr.log"), maxBytes=MAX_BYTES, backupCount=BACKUPS
        )
    except _Refused as exc:
        _say(f"xecr: not logging to {exc}")
        logger.addHandler(logging.NullHandler())
        return logger
    except (OSError, ValueError):
        logger.addHandler(logging.NullHandler())
        return logger
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger


def log_file(env: Mapping[str, str]) -> str:
    from ecr_helper import paths

    return os.path.join(paths.log_dir(env), "xecr.log")


def _logger() -> logging.Logger:
    if not _configured:
        setup(os.environ)
    return logging.getLogger(LOGGER)


def debug(message: str) -> None:
    _logger().debug(message)


def info(message: str) -> None:
    _logger().info(message)


def warning(message: str) -> None:
    _logger().warning(message)


def error(message: str, exc_info: bool = False) -> None:
    _logger().error(message, exc_info=exc_info)


def exception_debug(message: str) -> None:
    """A one-line error at WARNING and its traceback at DEBUG."""
    logger = _logger()
    logger.warning(message)
    logger.debug("details", exc_info=True)
