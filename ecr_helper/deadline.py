"""A wall-clock bound on a whole fetch from AWS.

botocore's timeouts bound each connect and each read, not a call: an endpoint
that answers one byte every few seconds never trips them. :func:`within` runs
the fetch on a daemon thread and stops waiting for it at the deadline. The
abandoned thread holds no lock and its result is dropped, never cached; a
process that exits takes it along, and the daemon's retry schedule keeps the
number of such threads small.
"""

from __future__ import annotations

import threading
import time

from ecr_helper.errors import EndpointError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

# A `get` that must fetch is promised to end within 20 s (README, SECURITY.md);
# what is left is for starting Python and answering.
FETCH_DEADLINE = 17.0
# Refreshing a still-valid token must not hold up a pull by more than 5 s.
QUICK_DEADLINE = 4.0


def within(seconds: float, work: Callable[[], T], what: str) -> T:
    """``work()``'s result, or :class:`EndpointError` once ``seconds`` have passed.

    ``what`` names the call for the error line ("AWS for registry 1111...").
    Exceptions from ``work`` are raised in the caller's thread as they are.
    """
    box: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append(work())
        except BaseException as exc:  # handed to the caller, whatever it is
            failure.append(exc)
        finally:
            done.set()

    started = time.monotonic()
    threading.Thread(target=run, name="xecr-fetch", daemon=True).start()
    if not done.wait(seconds):
        waited = time.monotonic() - started
        raise EndpointError(
            f"{what} did not finish within {waited:.0f} s (an endpoint that answers too "
            "slowly): check the network, proxy settings and AWS_ENDPOINT_URL"
        )
    if failure:
        raise failure[0]
    return box[0]
