"""ecr_helper.log: the private, size-capped log file and the redaction of every secret
(registered or secret-shaped) from messages and tracebacks alike."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from ecr_helper import log

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # the 40-character shape
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEJr" + "A" * 300 + "/+=="
ECR_TOKEN = "QVdTOmV5SndZWGxzYjJGa0lqb2lNVEl6TkRVMk56ZzVNREV5TXpRMU5qYzRPVEF4TWpNME5UWTNPRGt3" * 2


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_log_is_0600_in_a_0700_folder(log_file: Path) -> None:
    old = os.umask(0)
    try:
        log.warning("first line")
    finally:
        os.umask(old)
    assert mode(log_file) == 0o600
    assert mode(log_file.parent) == 0o700
    assert "WARNING first line" in log_file.read_text()
    assert log.log_file(dict(os.environ)) == str(log_file)


def test_registered_secrets_never_reach_the_file(log_file: Path) -> None:
    secret = "fake-secret-key-for-tests-only"
    log.register_secret(secret)
    log.warning(f"calling with {secret} now")
    log.info(f"again {secret}{secret}")
    text = log_file.read_text()
    assert secret not in text
    assert "calling with *** now" in text and "again ******" in text


def test_short_or_empty_values_are_not_registered() -> None:
    for value in ("", None, "AWS", "1234567"):
        log.register_secret(value)
    assert log.redact("AWS 1234567") == "AWS 1234567"


def test_the_longest_secret_is_removed_first() -> None:
    log.register_secret("abcdefgh-short")
    log.register_secret("abcdefgh-short-and-longer")
    assert log.redact("x abcdefgh-short-and-longer y") == "x *** y"


@pytest.mark.parametrize(
    "text",
    [
        f"key {SECRET_KEY} end",
        f"token {SESSION_TOKEN}",
        f"authorizationToken {ECR_TOKEN}",
        f"{{'AccessKeyId': 'ASIAFAKE', 'SecretAccessKey': '{SECRET_KEY}', "
        f"'SessionToken': '{SESSION_TOKEN}'}}",
        '{"ServerURL": "h", "Username": "AWS", "Secret": "hunter2-hunter2-value"}',
        "password=hunter2-hunter2-value",
        "Password: hunter2-hunter2-value",
        "x-amz-security-token: hunter2-hunter2-value",
        "credential = hunter2-hunter2-value",
    ],
)
def test_secret_shaped_strings_are_redacted(log_file: Path, text: str) -> None:
    log.warning(text)
    written = log_file.read_text()
    for secret in (SECRET_KEY, SESSION_TOKEN, ECR_TOKEN, "hunter2-hunter2-value"):
        assert secret not in written
    assert log.REDACTED in written


def test_ordinary_text_is_left_alone() -> None:
    text = (
        "AssumeRole arn:aws:iam::222222222222:role/ecr-pull for "
        "111111111111.dkr.ecr.us-east-1.amazonaws.com as AKIAFAKEFAKEFAKE0001"
    )
    assert log.redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        # How a failed `xecr get-login-password` reads in the log: the command and the
        # host must survive (it was once logged as "get-login-***' ...").
        "get-login-password: 'mirror.example.com' is neither an ECR host nor a registry in "
        "/home/u/.config/xecr/config.toml: add it with `xecr configure mirror.example.com`",
        "xecr get-login-password 111111111111.dkr.ecr.us-east-1.amazonaws.com: "
        "AssumeRole denied for arn:aws:iam::222222222222:role/ecr-pull (AccessDenied)",
        "cached token: AssumeRole denied for arn:aws:iam::222222222222:role/ecr-pull",
        "refresh of registry.example.com failed: credentials: none found",
    ],
)
def test_ordinary_words_survive(text: str) -> None:
    assert log.redact(text) == text


def test_a_redacted_value_keeps_its_key() -> None:
    assert log.redact("password=hunter2-hunter2-value rest") == "password=*** rest"
    assert log.redact('"Secret": "hunter2-hunter2-value"') == '"Secret": "***"'


def test_tracebacks_are_redacted(log_file: Path) -> None:
    log.register_secret("registered-secret-value")
    try:
        raise RuntimeError(f"boom registered-secret-value {SECRET_KEY}")
    except RuntimeError:
        log.error("the call failed", exc_info=True)
    text = log_file.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: boom ***" in text
    assert "registered-secret-value" not in text and SECRET_KEY not in text


def test_exception_debug_writes_the_traceback_at_debug_only(
    log_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XECR_LOG_LEVEL", "DEBUG")
    try:
        raise ValueError(f"password={SECRET_KEY}")
    except ValueError:
        log.exception_debug("get: it failed")
    text = log_file.read_text()
    assert "WARNING get: it failed" in text and "DEBUG details" in text
    assert "ValueError" in text and SECRET_KEY not in text


def test_the_default_level_is_info(log_file: Path) -> None:
    log.debug("hidden detail")
    log.info("shown")
    text = log_file.read_text()
    assert "shown" in text and "hidden detail" not in text


def test_botocore_output_never_reaches_the_file(log_file: Path) -> None:
    log.info("ours")
    logging.getLogger("botocore.credentials").warning("theirs %s", SECRET_KEY)
    logging.getLogger().warning("root %s", SECRET_KEY)
    text = log_file.read_text()
    assert "ours" in text and "theirs" not in text and "root" not in text


@pytest.mark.slow
def test_rotation_caps_the_size(log_file: Path) -> None:
    line = " ".join(["words that are not secrets"] * 40)  # about 1 KiB, not secret-shaped
    for n in range((log.MAX_BYTES * (log.BACKUPS + 2)) // len(line)):
        log.info(f"{n} {line}")
    files = sorted(log_file.parent.iterdir())
    assert [p.name for p in files] == ["xecr.log", "xecr.log.1", "xecr.log.2"]
    for path in files:
        assert path.stat().st_size <= log.MAX_BYTES
        assert mode(path) == 0o600
    assert sum(p.stat().st_size for p in files) > 2 * log.MAX_BYTES  # it did rotate


def test_a_log_that_cannot_be_opened_is_dropped_silently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_file: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the log folder should be")
    monkeypatch.setenv("XECR_LOG_DIR", str(blocker / "log"))
    log.warning("goes nowhere")
    log.error("neither does this", exc_info=True)
    assert blocker.read_text() == "a file where the log folder should be"
