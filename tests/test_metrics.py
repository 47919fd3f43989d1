"""The daemon's metrics, read back with prometheus_client's own parser, the
/healthz and STATUS= answers, and the HTTP listener that serves them."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ecr_helper import aws, ecr
from ecr_helper.config import RegistrySettings
from ecr_helper.daemon import health, http
from ecr_helper.daemon.health import RegistryView
from ecr_helper.daemon.metrics import Metrics
from ecr_helper.errors import AwsError, UsageError, XecrError
from ecr_helper.token import Token
from tests.fakeaws import FakeAws
from tests.helpers import CENTRAL, CENTRAL_HOST, PULL_ROLE

NOW = 1_800_000_000.0
OTHER_HOST = "333333333333.dkr.ecr.us-east-1.amazonaws.com"


def token(issued: float = NOW - 100, lifetime: float = 43200.0) -> Token:
    return Token("AWS", "s3cr3t-token-value", issued, issued + lifetime, CENTRAL_HOST, CENTRAL)


def samples(text: bytes) -> dict[str, list[Sample]]:
    """Every sample, by metric family name, as Prometheus would read them."""
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text.decode()):
        found.setdefault(family.name, []).extend(family.samples)
    return found


def value(found: dict[str, list[Sample]], name: str, **labels: str) -> float:
    matches = [
        s.value
        for family in found.values()
        for s in family
        if s.name == name and s.labels == labels
    ]
    assert len(matches) == 1, f"{name}{labels}: {matches}"
    return matches[0]


class Views:
    def __init__(self, views: Sequence[RegistryView]) -> None:
        self.views = list(views)

    def __call__(self) -> list[RegistryView]:
        return self.views


def test_every_required_metric_parses_and_carries_host_names_only() -> None:
    good = token()
    views = Views(
        [
            RegistryView(CENTRAL_HOST, good, 0, NOW + 21000),
            RegistryView(OTHER_HOST, None, 3, NOW + 20),
        ]
    )
    metrics = Metrics(views, clock=lambda: NOW)
    metrics.track([CENTRAL_HOST, OTHER_HOST])
    metrics.refreshed(CENTRAL_HOST, True)
    metrics.refreshed(OTHER_HOST, False)
    metrics.refreshed(OTHER_HOST, False)
    metrics.aws_call("AssumeRole", 0.07)
    metrics.aws_call("GetAuthorizationToken", 0.3)
    metrics.throttled("GetAuthorizationToken")
    status, content_type, text = metrics.page()
    assert status == 200
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"  # any Prometheus reads it
    found = samples(text)

    expiry = value(found, "xecr_token_expiry_timestamp_seconds", registry=CENTRAL_HOST)
    assert expiry == pytest.approx(good.expires_at - 300)  # served until 5 min before
    assert not [
        s
        for s in found["xecr_token_expiry_timestamp_seconds"]
        if s.labels == {"registry": OTHER_HOST}
    ]  # no token, no expiry
    assert value(found, "xecr_token_servable", registry=CENTRAL_HOST) == 1
    assert value(found, "xecr_token_servable", registry=OTHER_HOST) == 0
    assert value(found, "xecr_refresh_failures", registry=OTHER_HOST) == 3
    assert value(found, "xecr_next_refresh_timestamp_seconds", registry=OTHER_HOST) == NOW + 20
    assert value(found, "xecr_refresh_total", registry=CENTRAL_HOST, result="success") == 1
    assert value(found, "xecr_refresh_total", registry=CENTRAL_HOST, result="failure") == 0
    assert value(found, "xecr_refresh_total", registry=OTHER_HOST, result="failure") == 2
    assert value(found, "xecr_throttled_total", operation="GetAuthorizationToken") == 1
    assert value(found, "xecr_aws_request_duration_seconds_count", operation="AssumeRole") == 1
    assert (
        value(
            found,
            "xecr_aws_request_duration_seconds_bucket",
            operation="GetAuthorizationToken",
            le="0.5",
        )
        == 1
    )
    assert b"s3cr3t" not in text
    assert {s.labels.get("registry") for f in found.values() for s in f} <= {
        None,
        CENTRAL_HOST,
        OTHER_HOST,
    }


def test_a_registry_dropped_by_a_reload_leaves_the_counters() -> None:
    metrics = Metrics(Views([]), clock=lambda: NOW)
    metrics.track([CENTRAL_HOST, OTHER_HOST])
    metrics.refreshed(OTHER_HOST, True)
    metrics.track([CENTRAL_HOST])
    found = samples(metrics.render())
    hosts = {s.labels["registry"] for s in found["xecr_refresh"]}
    assert hosts == {CENTRAL_HOST}


def settings() -> RegistrySettings:
    return RegistrySettings(
        host=CENTRAL_HOST,
        registry_id=CENTRAL,
        region="us-east-1",
        partition="aws",
        role_arns=(PULL_ROLE,),
    )


@pytest.fixture
def instrumented() -> Iterator[Metrics]:
    metrics = Metrics(Views([]), clock=lambda: NOW)
    aws.SESSION_HOOKS.append(metrics.instrument)
    yield metrics
    aws.SESSION_HOOKS.remove(metrics.instrument)


def test_botocore_calls_are_timed_and_every_throttled_attempt_counted(
    fake_aws: FakeAws, instrumented: Metrics
) -> None:
    fake_aws.fail("GetAuthorizationToken", "throttle", times=2)
    ecr.fetch_token(settings())  # botocore retries twice, then succeeds
    found = samples(instrumented.render())
    assert value(found, "xecr_throttled_total", operation="GetAuthorizationToken") == 2
    for operation in ("AssumeRole", "GetAuthorizationToken"):
        # One call each, retries inside it: that is what a fetch waits for.
        assert value(found, "xecr_aws_request_duration_seconds_count", operation=operation) == 1


def test_a_failed_call_is_timed_too(fake_aws: FakeAws, instrumented: Metrics) -> None:
    fake_aws.fail("AssumeRole", "server_error")
    with pytest.raises(AwsError) as caught:
        ecr.fetch_token(settings())
    assert caught.value.overloaded and caught.value.status == 500
    found = samples(instrumented.render())
    assert value(found, "xecr_aws_request_duration_seconds_count", operation="AssumeRole") == 1
    assert "xecr_throttled" not in found or not found["xecr_throttled"]


def test_throttling_and_5xx_are_overload_but_a_refusal_is_not(fake_aws: FakeAws) -> None:
    fake_aws.fail("GetAuthorizationToken", "throttle")
    with pytest.raises(AwsError) as throttled:
        ecr.fetch_token(settings(), quick=True)
    fake_aws.clear_faults()
    fake_aws.fail("GetAuthorizationToken", "access_denied")
    with pytest.raises(AwsError) as denied:
        ecr.fetch_token(settings(), quick=True)
    assert throttled.value.overloaded
    assert not denied.value.overloaded


# -- health --------------------------------------------------------------------------------


def test_healthz_is_ok_only_while_every_registry_has_a_servable_token() -> None:
    fresh, due = token(), token(issued=NOW - 30000)
    lapsed = token(issued=NOW - 43000)  # inside the last 5 minutes: never served
    assert health.healthz([RegistryView(CENTRAL_HOST, fresh)], NOW) == (200, "ok\n")
    assert health.healthz([RegistryView(CENTRAL_HOST, due)], NOW) == (200, "ok\n")
    status, body = health.healthz(
        [
            RegistryView(CENTRAL_HOST, lapsed),
            RegistryView(OTHER_HOST, None),
            RegistryView("fine.example", fresh),
        ],
        NOW,
    )
    assert status == 503
    assert body == f"no servable token for {CENTRAL_HOST}, {OTHER_HOST}\n"
    assert health.healthz([], NOW)[0] == 503


def test_the_status_line_is_one_line_and_names_what_retries() -> None:
    line = health.summary(
        [RegistryView(CENTRAL_HOST, token()), RegistryView(OTHER_HOST, None, failures=2)], NOW
    )
    assert "\n" not in line
    assert line.startswith("1 of 2 registries served, first expiry 2027-01-")
    assert line.endswith(f"retrying {OTHER_HOST}")


# -- the listener ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9464", ("127.0.0.1", 9464)),
        (":9464", ("127.0.0.1", 9464)),
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("metrics.internal:9464", ("metrics.internal", 9464)),  # another host, said explicitly
        ("localhost:0", ("localhost", 0)),
        ("[::1]:9464", ("::1", 9464)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert http.parse_listen(text) == expected


@pytest.mark.parametrize(
    "text", ["", "host", "::1:9464", "[::1]9464", "a:99999", "a:-1", "a b:1", "x:port"]
)
def test_bad_listen_addresses_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--listen"):
        http.parse_listen(text)


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_the_listener_serves_its_routes_and_refuses_the_rest() -> None:
    def broken() -> http.Page:
        raise RuntimeError("s3cr3t")

    routes = {"/ok": lambda: (200, "text/plain", b"fine\n"), "/broken": broken}
    listener = http.Listener("127.0.0.1", 0, routes).start()
    try:
        assert listener.port > 0
        assert fetch(f"{listener.url}/ok") == (200, "text/plain", b"fine\n")
        assert fetch(f"{listener.url}/ok?x=1")[0] == 200
        assert fetch(f"{listener.url}/nothing")[0] == 404
        status, _, body = fetch(f"{listener.url}/broken")
        assert status == 500 and b"s3cr3t" not in body
    finally:
        listener.close()


def test_a_taken_port_is_one_line_naming_the_address() -> None:
    first = http.Listener("127.0.0.1", 0, {})
    try:
        with pytest.raises(XecrError) as caught:
            http.Listener("127.0.0.1", first.port, {})
        assert f"127.0.0.1:{first.port}" in str(caught.value)
        assert "\n" not in str(caught.value)
    finally:
        first.close()


def test_a_shared_token_is_one_refresh_series_labelled_with_its_registries(
    write_config: object,
) -> None:
    """Issue 22: the daemon refreshes a token shared by two registries once, and its
    refresh counter names both; the per-registry gauges show the one token for each."""
    import os
    import time

    from ecr_helper.daemon import loop
    from tests.helpers import serve_daemon, stop_daemon, token_of, wait_for

    third = "444444444444.dkr.ecr.eu-west-1.amazonaws.com"
    write_config(  # type: ignore[operator]
        f'[defaults]\nregion = "us-east-1"\nrole_arn = "{PULL_ROLE}"\n'
        f'[registries."{CENTRAL_HOST}"]\n[registries."{OTHER_HOST}"]\n[registries."{third}"]\n'
    )
    fetched: list[str] = []

    def fetch(settings: RegistrySettings, quick: bool) -> Token:
        fetched.append(settings.host)
        return token_of(settings, f"secret-{len(fetched)}", time.time(), 43200.0)

    d = loop.Daemon(dict(os.environ), fetch=fetch)
    metrics = Metrics(d.views)
    d.observe(metrics)
    commands, thread = serve_daemon(d)
    try:
        wait_for(lambda: len(fetched) >= 2, 10, "both tokens")
        wait_for(lambda: health.healthz(d.views(), time.time())[0] == 200, 5, "200")
        found = samples(metrics.render())
    finally:
        stop_daemon(commands, thread)
    assert sorted(fetched) == sorted([CENTRAL_HOST, third])
    shared = f"{CENTRAL_HOST},{OTHER_HOST}"
    assert value(found, "xecr_refresh_total", registry=shared, result="success") == 1
    assert value(found, "xecr_refresh_total", registry=third, result="success") == 1
    expiry = {
        host: value(found, "xecr_token_expiry_timestamp_seconds", registry=host)
        for host in (CENTRAL_HOST, OTHER_HOST)
    }
    assert expiry[CENTRAL_HOST] == expiry[OTHER_HOST]
