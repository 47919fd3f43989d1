"""``--help`` and usage errors as people read them: every command says what it does,
each program names itself, and a bad option gets the usage of the command it was
given to (issue 21, item 7)."""

from __future__ import annotations

import re
import subprocess

import pytest

from ecr_helper.cli import parser
from tests.helpers import installed

DOCUMENTED = ("login", "logout", "status", "get-login-password", "doctor", "kubelet", "version")


def _help(exe: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [installed(exe), *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _description(help_text: str) -> str:
    """The text between the usage lines and the first argument heading."""
    body = help_text.split("\n\n", 1)[1]
    return re.split(r"^(?:positional arguments|options):$", body, flags=re.MULTILINE)[0].strip()


def test_every_command_and_subcommand_has_a_description() -> None:
    missing = [p.prog for p in parser.parsers(parser.build_parser()) if not p.description]
    assert missing == []


def test_examples_are_printed_as_written() -> None:
    login = next(p for p in parser.parsers(parser.build_parser()) if p.prog == "xecr login")
    text = login.format_help()
    assert "\nexample:\n  xecr login  " in text
    assert "\n  xecr login 111111111111.dkr.ecr.us-east-1.amazonaws.com\n" in text


@pytest.mark.slow
@pytest.mark.parametrize("command", DOCUMENTED)
def test_each_command_says_what_it_does(command: str) -> None:
    done = _help("xecr", command)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: xecr {command} ")
    assert len(_description(done.stdout).split()) >= 3, done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "usage"),
    [((), "docker-credential-xecr"), (("status",), "docker-credential-xecr status")],
)
def test_the_helper_names_itself_in_its_usage(args: tuple[str, ...], usage: str) -> None:
    done = _help("docker-credential-xecr", *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {usage} "), done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (("policy", "client", "--bogus"), "usage: xecr policy client "),
        (("status", "--bogus"), "usage: xecr status "),
        (("--bogus",), "usage: xecr "),
    ],
)
def test_a_bad_option_gets_its_commands_usage(args: tuple[str, ...], usage: str) -> None:
    done = subprocess.run(
        [installed("xecr"), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr.startswith(usage), done.stderr
    assert done.stderr.rstrip().endswith("error: unrecognized arguments: --bogus")
