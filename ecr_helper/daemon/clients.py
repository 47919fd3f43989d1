"""The daemon's AWS sessions: one per source identity, shared by its fetches.

A botocore session loads its own copy of botocore's data (endpoints,
partitions, the STS and ECR models) the first time it makes a client: about
10 MB and 50-130 ms of CPU. ``get`` makes one per fetch and exits; a daemon
that did the same for every registry held one per fetch in flight and paid
the CPU again at every refresh. Here a session is kept per source profile
(the rest of what it reads, the environment and the AWS files' paths, is the
daemon's own and the same for every fetch), and new clients are made on it;
:func:`ecr_helper.aws.client` makes them one at a time, since botocore
sessions are not thread-safe (their clients are).

A fetch that outlives its deadline is abandoned, and its thread ends only
when botocore's own timeouts end it, which an endpoint that answers one byte
every few seconds never does. Before each fetch, :meth:`SharedSessions.fetch`
therefore waits while :data:`MAX_LIVE` fetch threads are still alive, and
fails the fetch (one line, retried with backoff) if they do not end: the
daemon's threads stay bounded whatever the endpoint does.

A kept session is dropped, so that what a fresh one would read is read
again (keys rotated in ``~/.aws/credentials``, a new SSO login, a profile
edited): after :data:`SESSION_MAX_AGE`, after any failed fetch from it, and
on a reload (:meth:`SharedSessions.clear`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    import boto3

    from ecr_helper.config import RegistrySettings
    from ecr_helper.token import Token

# Long enough that a fleet of registries shares one session through a refresh
# wave, short enough that edited AWS files are read again within minutes.
SESSION_MAX_AGE = 900.0
# The pool's 4 fetches in flight and up to 8 abandoned ones.
MAX_LIVE = 12
# How long a fetch waits for abandoned ones to end before it fails.
LIVE_WAIT = 15.0


class SharedSessions:
    """Source sessions kept per profile; :meth:`fetch` is the daemon's fetch."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_age: float = SESSION_MAX_AGE
    ) -> None:
        self._clock = clock
        self._max_age = max_age
        self._lock = threading.Lock()
        self._kept: dict[str | None, tuple[float, boto3.Session]] = {}
        self.made = 0  # sessions made so far (the tests and the benchmark read it)

    def session(self, profile: str | None) -> boto3.Session:
        """The kept session of ``profile``, or a new one kept from now on."""
        from ecr_helper import aws

        with self._lock:
            now = self._clock()
            kept = self._kept.get(profile)
            if kept is not None and now - kept[0] < self._max_age:
                return kept[1]
            # Made under the lock: fetch threads starting together share one.
            made = aws.session(profile)
            self._kept[profile] = (now, made)
            self.made += 1
            return made

    def forget(self, profile: str | None) -> None:
        with self._lock:
            self._kept.pop(profile, None)

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()

    def fetch(self, settings: RegistrySettings, quick: bool) -> Token:
        """:func:`ecr_helper.deadline.fetch_token` on the profile's kept session,
        once fewer than :data:`MAX_LIVE` fetch threads are alive."""
        from ecr_helper import deadline

        self._wait_for_abandoned()
        try:
            return deadline.fetch_token(settings, quick, sessions=self.session)
        except Exception:
            # Whatever went wrong, the next try starts from the AWS files again.
            self.forget(settings.source_profile)
            raise

    def _wait_for_abandoned(self) -> None:
        from ecr_helper import deadline
        from ecr_helper.errors import EndpointError

        waiting_since = time.monotonic()
        while (alive := deadline.live()) >= MAX_LIVE:
            if time.monotonic() - waiting_since >= LIVE_WAIT:
                raise EndpointError(
                    f"{alive} earlier AWS calls have not ended (an endpoint that answers "
                    "too slowly): check the network, proxy settings and AWS_ENDPOINT_URL"
                )
            time.sleep(0.1)
