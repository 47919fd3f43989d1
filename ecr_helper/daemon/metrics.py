"""The daemon's Prometheus metrics, made with ``prometheus_client``.

Imported only when ``xecr daemon --listen`` is given: nothing else in xecr
pays for the library. Labels are configured registry host names and AWS
operation names only; a token, key or session token never reaches a metric.

* ``xecr_token_expiry_timestamp_seconds{registry}``: when the cached token
  stops being served (read from the cache at each scrape, so a token renewed
  by ``xecr login`` or a ``get`` counts too);
* ``xecr_token_servable{registry}``: 1 while ``get`` would serve it;
* ``xecr_refresh_failures{registry}`` and
  ``xecr_next_refresh_timestamp_seconds{registry}``: the backoff in progress;
* ``xecr_refresh_total{registry,result}``: the daemon's own refreshes, one
  series per token: registries of one identity and region share one token,
  refreshed once, and its ``registry`` label names them all (``a,b,c``, in
  config order); the gauges above stay per registry, each showing its token;
* ``xecr_aws_request_duration_seconds{operation}``: each STS/ECR call, retries
  inside it included, from botocore's ``before-call``/``after-call`` events;
* ``xecr_throttled_total{operation}``: every throttled answer, retried ones too;
* ``xecr_build_info{version}`` and the process's own CPU and memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from ecr_helper import __version__
from ecr_helper.daemon.health import RegistryView, servable, served_until
from ecr_helper.errors import THROTTLE_CODES

# What prometheus_client's own handler answers a scraper that asks for nothing
# newer (generate_latest writes this format): every Prometheus version reads it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SUCCESS = "success"
FAILURE = "failure"
# STS and ECR answer in tens of milliseconds; a fetch is bounded at tens of seconds.
_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
_START = "xecr_metrics_started"


class Metrics:
    """The registry of the daemon's metrics, fed by its workers and by botocore."""

    def __init__(
        self,
        views: Callable[[], Sequence[RegistryView]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        # `_created` series double every counter for nothing an operator reads.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self._refresh = Counter(
            "xecr_refresh",
            "Token refreshes made by the daemon, per token (labelled with the registry "
            "hosts that share it, comma-separated) and result.",
            ["registry", "result"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "xecr_aws_request_duration_seconds",
            "Duration of each AWS API call (STS, ECR), retries included.",
            ["operation"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._throttled = Counter(
            "xecr_throttled",
            "AWS answers that throttled a request (each attempt counts).",
            ["operation"],
            registry=self.registry,
        )
        self.registry.register(_RegistryCollector(views, clock))
        ProcessCollector(registry=self.registry)
        self._hosts: set[str] = set()
        self._lock = threading.Lock()

    # -- fed by the daemon --------------------------------------------------------------

    def track(self, hosts: Iterable[str]) -> None:
        """Show these registries' counters from zero; drop those no longer configured."""
        wanted = set(hosts)
        with self._lock:
            for host in self._hosts - wanted:
                for result in (SUCCESS, FAILURE):
                    try:
                        self._refresh.remove(host, result)
                    except KeyError:
                        pass
            for host in wanted - self._hosts:
                for result in (SUCCESS, FAILURE):
                    self._refresh.labels(host, result)
            self._hosts = wanted

    def refreshed(self, host: str, ok: bool) -> None:
        self._refresh.labels(host, SUCCESS if ok else FAILURE).inc()

    def aws_call(self, operation: str, seconds: float) -> None:
        self._duration.labels(operation).observe(max(0.0, seconds))

    def throttled(self, operation: str) -> None:
        self._throttled.labels(operation).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def page(self) -> tuple[int, str, bytes]:
        """``GET /metrics``."""
        return 200, CONTENT_TYPE, self.render()

    # -- botocore -------------------------------------------------------------------------

    def instrument(self, session: Any) -> None:
        """Register the timing and throttling handlers on a botocore session."""
        session.register("before-call", self._before_call, unique_id=_START)
        session.register("after-call", self._after_call, unique_id="xecr_metrics_done")
        session.register("after-call-error", self._after_call, unique_id="xecr_metrics_error")
        session.register("needs-retry", self._attempt, unique_id="xecr_metrics_attempt")

    @staticmethod
    def _before_call(context: dict[str, Any] | None = None, model: Any = None, **_: Any) -> None:
        if context is not None:
            context[_START] = (time.monotonic(), str(getattr(model, "name", "unknown")))

    def _after_call(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        started = context.pop(_START, None) if context is not None else None
        if started is not None:
            self.aws_call(started[1], time.monotonic() - started[0])

    def _attempt(self, response: Any = None, operation: Any = None, **_: Any) -> None:
        # A needs-retry handler that answers None: it never asks for a retry itself.
        if _is_throttle(response):
            self.throttled(str(getattr(operation, "name", "unknown")))


def _is_throttle(response: Any) -> bool:
    if not isinstance(response, tuple) or len(response) != 2:
        return False
    http, parsed = response
    if getattr(http, "status_code", 0) == 429:
        return True
    code = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
    return code in THROTTLE_CODES


class _RegistryCollector:
    """The per-registry gauges, computed from the daemon's snapshot at each scrape."""

    def __init__(self, views: Callable[[], Sequence[RegistryView]], clock: Callable[[], float]):
        self._views = views
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        expiry = GaugeMetricFamily(
            "xecr_token_expiry_timestamp_seconds",
            "Unix time the cached token stops being served (absent: no token).",
            labels=["registry"],
        )
        ok = GaugeMetricFamily(
            "xecr_token_servable",
            "1 while the registry's cached token may be served, else 0.",
            labels=["registry"],
        )
        failures = GaugeMetricFamily(
            "xecr_refresh_failures",
            "Failed refreshes in a row (0 once one succeeds).",
            labels=["registry"],
        )
        upcoming = GaugeMetricFamily(
            "xecr_next_refresh_timestamp_seconds",
            "Unix time of the registry's next refresh or retry.",
            labels=["registry"],
        )
        for view in self._views():
            if view.token is not None:
                expiry.add_metric([view.host], served_until(view.token))
            ok.add_metric([view.host], 1.0 if servable(view, now) else 0.0)
            failures.add_metric([view.host], float(view.failures))
            if view.next_attempt is not None:
                upcoming.add_metric([view.host], view.next_attempt)
        info = GaugeMetricFamily(
            "xecr_build_info", "The running xecr version (value 1).", labels=["version"]
        )
        info.add_metric([__version__], 1.0)
        yield from (expiry, ok, failures, upcoming, info)
