"""Where xecr keeps its files: configuration, token cache and log.

On Linux the folders follow the XDG rules exactly as platformdirs computes
them (a test holds the two together), without importing platformdirs: its
import costs more than the cached ``get`` may spend. Elsewhere (macOS,
Windows) platformdirs answers.

Environment overrides, for packaging and tests: ``XECR_CONFIG`` (the one file
to read), ``XECR_SYSTEM_CONFIG`` (the machine-wide file, default
``/etc/xecr/config.toml``), ``XECR_CACHE_DIR``, ``XECR_SYSTEM_CACHE_DIR``
(default ``/var/cache/xecr``) and ``XECR_LOG_DIR``.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

APP = "xecr"
SYSTEM_CONFIG = "/etc/xecr/config.toml"
SYSTEM_CACHE_DIR = "/var/cache/xecr"


def _home(env: Mapping[str, str]) -> str:
    home = env.get("HOME") or os.path.expanduser("~")
    if not home or home == "~":
        # No HOME and no passwd entry (an arbitrary uid in a container, a bare
        # systemd unit). A guessable /tmp folder would invite symlink games, so
        # point at a path that cannot exist: xecr then works uncached.
        return "/nonexistent"
    return home


def _xdg(env: Mapping[str, str], var: str, default: str) -> str:
    value = env.get(var, "").strip()
    # The XDG spec (and platformdirs) ignore a relative path here.
    return value if os.path.isabs(value) else os.path.join(_home(env), default)


def user_config_dir(env: Mapping[str, str]) -> str:
    if sys.platform.startswith("linux"):
        return os.path.join(_xdg(env, "XDG_CONFIG_HOME", ".config"), APP)
    import platformdirs

    return platformdirs.user_config_dir(APP, appauthor=False)


def user_cache_dir(env: Mapping[str, str]) -> str:
    if sys.platform.startswith("linux"):
        return os.path.join(_xdg(env, "XDG_CACHE_HOME", ".cache"), APP)
    import platformdirs

    return platformdirs.user_cache_dir(APP, appauthor=False)


def user_log_dir(env: Mapping[str, str]) -> str:
    if sys.platform.startswith("linux"):
        return os.path.join(
            _xdg(env, "XDG_STATE_HOME", os.path.join(".local", "state")), APP, "log"
        )
    import platformdirs

    return platformdirs.user_log_dir(APP, appauthor=False)


def user_config_file(env: Mapping[str, str]) -> str:
    return os.path.join(user_config_dir(env), "config.toml")


def system_config_file(env: Mapping[str, str]) -> str:
    return env.get("XECR_SYSTEM_CONFIG") or SYSTEM_CONFIG


def cache_dir(env: Mapping[str, str], system: bool) -> str:
    """The token cache folder: machine-wide when the machine-wide config is in use."""
    explicit = env.get("XECR_CACHE_DIR")
    if explicit:
        return explicit
    if system:
        return env.get("XECR_SYSTEM_CACHE_DIR") or SYSTEM_CACHE_DIR
    return user_cache_dir(env)


def log_dir(env: Mapping[str, str]) -> str:
    return env.get("XECR_LOG_DIR") or user_log_dir(env)
