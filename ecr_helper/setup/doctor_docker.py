"""``xecr doctor``'s checks of Docker's side: does Docker send a registry to xecr,
and can Docker run xecr at all.

Docker runs the helper a ``credHelpers`` entry (or ``credsStore``) names as
``docker-credential-<name>``, looked up on its PATH. When that lookup fails
Docker says only ``no basic auth credentials``, so doctor looks it up on the
PATH it runs with, and when it is not there, says where an install put it
(pipx's bin folder, the virtualenv xecr runs from). ECR Public has two names
(``public.ecr.aws`` and the dual-stack ``ecr-public.aws.com``); Docker routes
each separately, so both are looked at.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecr_helper import config
from ecr_helper.errors import ConfigError, InputError, NotOurRegistry
from ecr_helper.registry import PUBLIC_HOST, PUBLIC_HOSTS, misnumbered_id
from ecr_helper.setup import dockerconfig
from ecr_helper.setup.checks import Check

EXECUTABLE = f"docker-credential-{dockerconfig.HELPER_NAME}"
# The dual-stack name after the usual one, so messages name them in that order.
PUBLIC_NAMES = (PUBLIC_HOST, *sorted(PUBLIC_HOSTS - {PUBLIC_HOST}))
PIPX = "pipx's bin folder"


@dataclass(frozen=True)
class HelperLookup:
    """Where ``docker-credential-xecr`` is: on the PATH (``found``), else ``elsewhere``."""

    found: str | None
    elsewhere: str | None = None
    place: str = ""  # what put it ``elsewhere`` (:func:`install_places`)


def install_places(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """The folders an install of xecr puts its executables in, and what puts them there."""
    home = env.get("HOME") or os.path.expanduser("~")
    pipx = env.get("PIPX_BIN_DIR") or os.path.join(home, ".local", "bin")
    # Not resolved: a venv's python is a link to the base interpreter, elsewhere.
    running = os.path.dirname(sys.executable)
    places = [(pipx, PIPX), (running, "the virtualenv xecr runs from")]
    # The self-contained bundle (and the packages carrying it) keeps its
    # interpreter in libexec/ and its commands in bin/.
    bundled = os.path.join(sys.prefix, "bin")
    if bundled != running:
        places.append((bundled, "the xecr bundle"))
    return places


def find_helper(env: Mapping[str, str], places: Sequence[tuple[str, str]] = ()) -> HelperLookup:
    """Look ``docker-credential-xecr`` up as Docker would, on ``env``'s PATH; else in
    ``places`` (default :func:`install_places`)."""
    found = shutil.which(EXECUTABLE, path=env.get("PATH", os.defpath))
    if found is not None:
        return HelperLookup(found)
    for folder, place in places or install_places(env):
        candidate = shutil.which(EXECUTABLE, path=folder)
        if candidate is not None:
            return HelperLookup(None, candidate, place)
    return HelperLookup(None)


MISSING = f"{EXECUTABLE} is not on PATH, so Docker cannot run it"


def says_missing(check: Check) -> bool:
    """Whether ``check`` already told that Docker cannot find the helper."""
    return not check.ok and MISSING in check.detail


def missing_helper(lookup: HelperLookup) -> tuple[str, str]:
    """What to say (detail, hint) when Docker cannot find the helper."""
    detail = f'{MISSING} (pulls then say only "no basic auth credentials")'
    if lookup.elsewhere is None:
        return detail, "install xecr so that it is on PATH (`pipx install xecr` puts it there)"
    folder = os.path.dirname(lookup.elsewhere)
    how = "`pipx ensurepath`, or " if lookup.place == PIPX else ""
    return detail, (
        f"it is in {folder} ({lookup.place}): add that folder to the PATH Docker runs with "
        f'({how}export PATH="{folder}:$PATH" in your shell profile), '
        f"or link it: ln -s {lookup.elsewhere} /usr/local/bin/{EXECUTABLE}"
    )


def _route(document: Mapping[str, Any], host: str) -> tuple[bool, str]:
    """Whether Docker sends ``host`` to xecr, and how (or why not)."""
    helper = dockerconfig.helper_for(document, host)
    if helper == dockerconfig.HELPER_NAME:
        return True, "credHelpers"
    store = document.get("credsStore")
    if helper is None and store == dockerconfig.HELPER_NAME:
        return True, "credsStore"
    if helper is not None:
        return False, f'credHelpers sends it to "{helper}"'
    if isinstance(store, str) and store:
        return False, f'credsStore sends it to "{store}"'
    return False, "no credential helper is named for it"


def host_check(
    path: str, settings: config.RegistrySettings, suffix: str, lookup: HelperLookup
) -> Check:
    """Whether Docker sends ``settings``' registry (both names of ECR Public) to a
    ``docker-credential-xecr`` it can run."""
    name = f"docker config{suffix}"
    host = settings.host
    try:
        document = dockerconfig.load(path)
    except ConfigError as exc:
        return Check(name, False, str(exc), f"fix or move {path}, then run `xecr configure {host}`")
    names = PUBLIC_NAMES if settings.public else (host,)
    routes = {each: _route(document, each) for each in names}
    routed = [each for each, (ok, _) in routes.items() if ok]
    if not routed:
        why = routes[host][1]
        detail = f"{path} does not send {host} to xecr: {why}"
        return Check(name, False, detail, f"run `xecr configure {host}`")
    if lookup.found is None:
        detail, hint = missing_helper(lookup)
        return Check(
            name, False, f"{path} sends {' and '.join(routed)} to xecr, but {detail}", hint
        )
    how = ", ".join(sorted({routes[each][1] for each in routed}))
    sent = f"{path} sends {' and '.join(routed)} to xecr ({how}), run as {lookup.found}"
    unrouted = [each for each in names if each not in routed]
    if not unrouted:
        return Check(name, True, sent)
    other = unrouted[0]
    return Check(
        name,
        False,
        f"{sent}, but not {other}, ECR Public's other name ({routes[other][1]}): "
        "images pulled by that name go without credentials",
        f"run `xecr configure {other}` if you pull by that name",
        warning_only=True,
    )


def other_checks(
    path: str, lookup: HelperLookup, loaded: config.Config, source: str, reported: bool
) -> list[Check]:
    """The ``credHelpers`` entries naming xecr that no registry check covered: one that
    sends xecr a host it does not serve, and (unless ``reported``) a helper Docker
    cannot find."""
    try:
        document = dockerconfig.load(path)
    except ConfigError:
        return []  # reported by the registry checks, if any; nothing to add
    helpers = document.get("credHelpers")
    named = [
        host
        for host, helper in (helpers.items() if isinstance(helpers, dict) else ())
        if helper == dockerconfig.HELPER_NAME and isinstance(host, str)
    ]
    found = [check for host in named if (check := _unserved(path, loaded, source, host))]
    if document.get("credsStore") == dockerconfig.HELPER_NAME:
        named.append("credsStore")
    if named and lookup.found is None and not reported:
        detail, hint = missing_helper(lookup)
        shown = ", ".join(named)
        found.append(
            Check("docker helper", False, f"{path} names xecr ({shown}), but {detail}", hint)
        )
    return found


def _unserved(path: str, loaded: config.Config, source: str, host: str) -> Check | None:
    """A credHelpers entry sending xecr a host it answers "not found" for: Docker then
    pulls from it without credentials."""
    try:
        loaded.resolve(host)
    except (NotOurRegistry, InputError):
        misnumbered = misnumbered_id(host)
        return Check(
            f"docker config [{host}]",
            False,
            f"{path}: credHelpers sends {host} to xecr, but it is neither an ECR host nor a "
            f"registry in {source}, so Docker pulls it without credentials"
            + (f" ({misnumbered})" if misnumbered else ""),
            "fix the account id in that entry"
            if misnumbered
            else f"remove that entry, or `xecr configure {host} --registry-id ID --region REGION`",
        )
    except ConfigError:
        return None  # a broken section: reported with the config
    return None
