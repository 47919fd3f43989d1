"""A loopback AWS stand-in (STS, ECR, ECR Public) for the tests, the benchmarks and the README demo.

This module owns ``FakeAws``: moto 5.2.1's server WSGI app (``DomainDispatcherApplication``
over ``create_backend_app``) wrapped in our own middleware and served by a threaded werkzeug
server bound to 127.0.0.1 only. The middleware adds what moto lacks:

* ECR's tokens, the ECR way: GetAuthorizationToken answers ONE token per caller, valid for
  every registry of its region the caller may read, whatever ``registryIds`` says (the
  parameter is deprecated and does not change the token's scope): one ``authorizationData``
  item, ``authorizationToken = base64("AWS:<caller's account>-auth-token")``, ``proxyEndpoint``
  the caller's own registry in the signed region, and a real expiry ``expiresAt = now +
  token_ttl`` (epoch seconds, as ECR's JSON protocol does) instead of moto's fixed 2015
  date. A role in 111111111111 thus gets ``QVdTOjExMTExMTExMTExMS1hdXRoLXRva2Vu`` (user
  ``AWS``, password ``111111111111-auth-token``), and that one token opens each of that
  account's registries (the e2e registries accept it);
* ECR Public's GetAuthorizationToken, which moto lacks, answered here: JSON 1.1, target
  ``SpencerFrontendService.GetAuthorizationToken`` (signing name ``ecr-public``, as
  botocore's service model has it), ``authorizationData`` one object (not a list) with
  ``authorizationToken = base64("AWS:ecr-public-<caller's account>-auth-token")`` and
  ``expiresAt = now + token_ttl``. Its records have ``service == "ecr-public"``; ``calls``
  counts it under ``GetAuthorizationToken`` with private ECR's, and faults on that action
  hit both;
* ECR's repository creation templates and DescribeRepositories paging
  (``self.ecr``, :mod:`tests.fakeaws_ecr`);
* counting and records of every AWS call (``calls``, ``requests``, ``reset``);
* injected faults shaped exactly like real AWS errors (``fail``, ``clear_faults``);
* faults for one role only (``fail(..., match={"RoleArn": ...})``): STS refusing one identity;
* stand-ins for two credential sources moto lacks, on the same port: a container-credentials
  endpoint (``GET /_stand/container-credentials``, for ``AWS_CONTAINER_CREDENTIALS_FULL_URI``,
  answering only ``container_token`` in Authorization) and the IAM Identity Center portal's
  GetRoleCredentials (``GET /federation/credentials``, answering only the bearer token
  ``sso_access_token`` in ``x-amz-sso_bearer_token``, a header werkzeug would drop);
* outages: ``go_down`` closes the listener (connection refused) and ``come_up`` listens again
  on the same port;
* control over HTTP (``/_fake/...``) and signals, for a fake running in another process.

Multi-account (checked against moto 5.2.1): any key that moto did not issue maps to account
123456789012. AssumeRole of ``arn:aws:iam::111111111111:role/x`` (the role need not exist)
returns ASIA... credentials that moto ties to account 111111111111: GetCallerIdentity with them
says ``arn:aws:sts::111111111111:assumed-role/x/<session>`` and ECR calls made with them
(CreateRepository, Set/GetRepositoryPolicy, GetAuthorizationToken without registryIds) land in
that account's backend. moto does NOT evaluate cross-account access: ECR's ``registryId``
parameter never switches backends, so base credentials asking for registryId 111111111111 get
RepositoryNotFoundException. State is per region (a repository made in eu-west-1 is absent
from us-east-1) and lives in moto's process-global backends, shared by every FakeAws in
the process; ``reset_state()`` wipes it. No IAM policy is ever enforced.

STS and ECR share the one port: moto routes on the service in the Authorization header's
credential scope, so point boto3 at ``url`` with ``endpoint_url=`` or ``AWS_ENDPOINT_URL``.

Run standalone: ``python -m tests.fakeaws --port 0 --ttl 43200`` prints one line, the URL,
once listening and runs until SIGTERM/SIGINT. SIGUSR1 = go_down, SIGUSR2 = come_up. HTTP
control: ``POST /_fake/fail`` {action, kind, times, match}, ``POST /_fake/clear``,
``POST /_fake/ttl`` {ttl}, ``GET /_fake/calls``, ``GET /_fake/requests``, ``POST /_fake/reset``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import queue
import re
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from http import HTTPStatus
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.test import Client

from tests.fakeaws_ecr import EcrExtras, call_wsgi

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PUBLIC_TARGET = "SpencerFrontendService"  # ECR Public's JSON target prefix
HOST = "127.0.0.1"  # loopback only, never every interface: the fake accepts any credentials
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/")

# kind -> (STS status, STS code, ECR status, ECR __type, message), as real AWS answers them.
_ERRORS: dict[str, tuple[int, str, int, str, str]] = {
    "access_denied": (
        403,
        "AccessDenied",
        400,
        "AccessDeniedException",
        "User is not authorized to perform this operation",
    ),
    "expired_token": (
        400,
        "ExpiredToken",
        400,
        "ExpiredTokenException",
        "The security token included in the request is expired",
    ),
    "throttle": (400, "Throttling", 400, "ThrottlingException", "Rate exceeded"),
    "server_error": (
        500,
        "InternalFailure",
        500,
        "ServerException",
        "The request processing has failed because of an unknown error",
    ),
    "unavailable": (
        503,
        "ServiceUnavailable",
        503,
        "ServiceUnavailableException",
        "Service is unavailable. Please try again later",
    ),
    "invalid_client_token": (
        403,
        "InvalidClientTokenId",
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    ),
    # STS only (AssumeRoleWithWebIdentity): the OIDC provider or the token was not accepted.
    "invalid_identity_token": (
        400,
        "InvalidIdentityToken",
        400,
        "InvalidIdentityTokenException",
        "No OpenIDConnect provider found in your account for the token's issuer",
    ),
}
FAULT_KINDS = frozenset({*_ERRORS, "hang"})


@dataclass(frozen=True)
class FakeRequest:
    """One AWS call seen by the fake. ``params`` are the form fields (strings) for STS and
    the JSON body for ECR; service/region/access_key_id come from the SigV4 credential."""

    action: str
    params: dict[str, Any]
    access_key_id: str | None
    service: str | None
    region: str | None
    time: float


@dataclass
class _Fault:
    action: str | None
    kind: str
    remaining: int | None
    match: dict[str, str]

    def applies(self, req: FakeRequest) -> bool:
        if self.action is not None and self.action != req.action:
            return False
        return all(str(req.params.get(k)) == v for k, v in self.match.items())


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request would drown test output; errors are still logged

    def make_environ(self) -> WSGIEnvironment:
        environ = super().make_environ()
        # werkzeug drops every header whose name has "_" (it cannot be told from
        # "-" in WSGI), and the SSO portal's bearer header has one.
        bearer = self.headers.get("x-amz-sso_bearer_token")
        if bearer is not None:
            environ["fakeaws.sso_bearer_token"] = bearer
        return environ


@dataclass(frozen=True)
class StandIn:
    """Credentials a loopback stand-in hands out (container endpoint, SSO portal)."""

    access_key_id: str
    secret_access_key: str
    session_token: str


class FakeAws:
    """Loopback STS + ECR; see the module docstring."""

    def __init__(self, *, token_ttl: float = 43200.0, port: int = 0) -> None:
        self.token_ttl = token_ttl  # read per request, so tests may change it at any time
        self._port = port
        self._moto: WSGIApplication = DomainDispatcherApplication(create_backend_app)
        # Creation templates and DescribeRepositories paging (tests/fakeaws_ecr.py).
        self.ecr = EcrExtras(self._moto)
        self._lock = threading.Condition()
        self._counts: Counter[str] = Counter()
        self._records: list[FakeRequest] = []
        self._faults: list[_Fault] = []
        # Hung requests wait until one of these moves: clear_faults bumps the first,
        # go_down/stop bump the second (and then drop the connection instead of answering).
        self._clear_gen = 0
        self._down_gen = 0
        self._server: ThreadedWSGIServer | None = None
        self._thread: threading.Thread | None = None
        # The container-credentials endpoint (GET /_stand/container-credentials) answers
        # only this Authorization header; the SSO portal (GET /federation/credentials)
        # only this bearer token. Each hands out its StandIn keys, valid credential_ttl.
        self.container_token = "container-authorization-token-for-tests"
        self.container_keys = StandIn(
            "AKIACONTAINERFAKE001", "container-secret-for-tests", "container-session-token"
        )
        self.sso_access_token = "sso-access-token-for-tests"
        self.sso_keys = StandIn("ASIASSOPORTALFAKE001", "sso-secret-for-tests", "sso-session-token")
        self.credential_ttl = 3600.0
        self.stand_in_calls: list[tuple[str, dict[str, str]]] = []

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> FakeAws:
        if self._server is None:
            self._listen()
        return self

    def stop(self) -> None:
        self.go_down()

    def go_down(self) -> None:
        """Close the listener: new connections are refused, hung requests are dropped."""
        with self._lock:
            self._down_gen += 1
            self._lock.notify_all()
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()  # returns within one poll interval
            server.server_close()
        if thread is not None:
            thread.join(timeout=2)

    def come_up(self) -> None:
        """Listen again on the same port as before."""
        self.start()

    def __enter__(self) -> FakeAws:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _listen(self) -> None:
        deadline = time.monotonic() + 3.0
        while True:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # SO_REUSEADDR so come_up can rebind while old connections sit in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, self._port))
                sock.listen(128)
                break
            except OSError:
                sock.close()
                if self._port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        try:
            # Handing werkzeug a bound fd avoids its sys.exit() on EADDRINUSE; it dups the fd.
            server = ThreadedWSGIServer(HOST, 0, self, handler=_QuietHandler, fd=sock.fileno())
        finally:
            sock.close()
        self._port = server.port
        self._warm_up()
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fakeaws-{self._port}",
            daemon=True,
        )
        with self._lock:
            self._server, self._thread = server, thread
        thread.start()

    def _warm_up(self) -> None:
        """Import moto's STS and ECR backends and build their Flask apps now, bypassing the
        middleware (so nothing is counted): done lazily, the first call took up to ~0.3 s,
        enough to trip a 2 s read timeout on a loaded CI machine."""
        client = Client(self._moto)
        scope = "AWS4-HMAC-SHA256 Credential=AKIAWARMUP/20250101/us-east-1/{}/aws4_request"
        client.post(
            "/",
            data="Action=GetCallerIdentity&Version=2011-06-15",
            headers={"Authorization": scope.format("sts")},
            content_type="application/x-www-form-urlencoded",
        ).close()
        client.post(
            "/",
            data="{}",
            content_type="application/x-amz-json-1.1",
            headers={
                "Authorization": scope.format("ecr"),
                "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
            },
        ).close()

    # -- observation ---------------------------------------------------------------------
    def calls(self, action: str) -> int:
        with self._lock:
            return self._counts[action]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def requests(self, action: str | None = None) -> list[FakeRequest]:
        with self._lock:
            return [r for r in self._records if action is None or r.action == action]

    def reset(self) -> None:
        """Forget counts and records (faults and moto state stay)."""
        with self._lock:
            self._counts.clear()
            self._records.clear()
            self.stand_in_calls.clear()

    @staticmethod
    def reset_state() -> None:
        """Wipe moto's backends: process-global, so every FakeAws in the process sees it."""
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()

    # -- faults --------------------------------------------------------------------------
    def fail(
        self,
        action: str | None,
        kind: str,
        times: int | None = None,
        match: dict[str, str] | None = None,
    ) -> None:
        """Answer ``action`` (None: any action) with fault ``kind``, ``times`` times (None:
        until clear_faults). ``match`` narrows the fault to requests whose parameters
        equal it (``{"WebIdentityToken": token}``: only that pod's token is refused).
        Faulted calls still count. Earlier faults match first."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        with self._lock:
            self._faults.append(_Fault(action, kind, times, dict(match or {})))

    def clear_faults(self) -> None:
        """Remove every fault; requests hung so far are then answered normally."""
        with self._lock:
            self._faults.clear()
            self._clear_gen += 1
            self._lock.notify_all()

    def _take_fault(self, req: FakeRequest) -> _Fault | None:
        for fault in self._faults:
            if fault.applies(req):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _hang(self) -> bool:
        """Block until cleared (True: answer normally) or gone down/stopped (False: drop)."""
        with self._lock:
            clear_gen, down_gen = self._clear_gen, self._down_gen
            while self._clear_gen == clear_gen and self._down_gen == down_gen:
                self._lock.wait()
            return self._down_gen == down_gen

    # -- WSGI ----------------------------------------------------------------------------
    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = _read_body(environ)
        if environ.get("PATH_INFO", "").startswith("/_fake/"):
            return self._control(environ, body, start_response)
        if environ.get("PATH_INFO", "") in _STAND_INS:
            return self._stand_in(environ, start_response)
        req = _parse(environ, body)
        if req is None:  # not an AWS action we can name (e.g. /moto-api): pass through
            return self._moto(environ, start_response)
        with self._lock:
            self._counts[req.action] += 1
            self._records.append(req)
            fault = self._take_fault(req)
        if fault is not None and fault.kind == "hang":
            if not self._hang():
                return _drop(environ, start_response)
        elif fault is not None:
            return _error(req, fault.kind, "HTTP_X_AMZ_TARGET" in environ, start_response)
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(PUBLIC_TARGET + "."):
            return self._public(req, start_response)
        if req.action == "GetAuthorizationToken":
            return self._fresh_token(environ, start_response, req)
        extra = self.ecr.answer(req, environ, start_response)
        return extra if extra is not None else self._moto(environ, start_response)

    def _public(self, req: FakeRequest, start_response: StartResponse) -> Iterable[bytes]:
        """ECR Public: moto has no such service, so its token is made here."""
        json_type = "application/x-amz-json-1.1"
        if req.action != "GetAuthorizationToken":
            code = "UnsupportedCommandException"
            return _respond(
                start_response,
                400,
                {"__type": code, "message": f"the fake has no ECR Public {req.action}"},
                json_type,
                [("x-amzn-ErrorType", code)],
            )
        from moto.iam.models import get_account_id_from

        account = get_account_id_from(req.access_key_id or "")
        secret = f"AWS:ecr-public-{account}-auth-token".encode()
        data = {
            "authorizationToken": base64.b64encode(secret).decode(),
            "expiresAt": round(time.time() + float(self.token_ttl), 3),
        }
        return _respond(start_response, 200, {"authorizationData": data}, json_type)

    def _fresh_token(
        self, environ: WSGIEnvironment, start_response: StartResponse, req: FakeRequest
    ) -> Iterable[bytes]:
        """ECR's answer: the caller's one token for the region (see the module docstring).

        moto is still asked first, with ``registryIds`` left out, so its own checks
        (a malformed request, credentials it refuses) answer as before."""
        from moto.iam.models import get_account_id_from

        environ["wsgi.input"] = io.BytesIO(b"{}")
        environ["CONTENT_LENGTH"] = "2"
        status, headers, raw = call_wsgi(self._moto, environ)
        if status.startswith("200"):
            account = get_account_id_from(req.access_key_id or "")
            secret = f"AWS:{account}-auth-token".encode()
            item = {
                "authorizationToken": base64.b64encode(secret).decode(),
                "expiresAt": round(time.time() + float(self.token_ttl), 3),
                "proxyEndpoint": f"https://{account}.dkr.ecr.{req.region}.amazonaws.com",
            }
            raw = json.dumps({"authorizationData": [item]}).encode()
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(raw))))
        start_response(status, headers)
        return [raw]

    def _stand_in(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        """The container-credentials endpoint and the SSO portal's GetRoleCredentials."""
        path = environ.get("PATH_INFO", "")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        with self._lock:
            self.stand_in_calls.append((path, query))
        expires = time.time() + self.credential_ttl
        if path == "/_stand/container-credentials":
            if environ.get("HTTP_AUTHORIZATION") != self.container_token:
                return _respond(start_response, 403, {"message": "bad authorization token"})
            keys = self.container_keys
            return _respond(
                start_response,
                200,
                {
                    "AccessKeyId": keys.access_key_id,
                    "SecretAccessKey": keys.secret_access_key,
                    "Token": keys.session_token,
                    "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
                },
            )
        if environ.get("fakeaws.sso_bearer_token") != self.sso_access_token:
            return _respond(
                start_response,
                401,
                {"message": "Session token not found or invalid"},
                extra=[("x-amzn-ErrorType", "UnauthorizedException")],
            )
        keys = self.sso_keys
        return _respond(
            start_response,
            200,
            {
                "roleCredentials": {
                    "accessKeyId": keys.access_key_id,
                    "secretAccessKey": keys.secret_access_key,
                    "sessionToken": keys.session_token,
                    "expiration": int(expires * 1000),
                }
            },
        )

    def _control(
        self, environ: WSGIEnvironment, body: bytes, start_response: StartResponse
    ) -> Iterable[bytes]:
        route = (environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""))
        try:
            args: dict[str, Any] = json.loads(body) if body.strip() else {}
            answer: Any = {"ok": True}
            if route == ("POST", "/_fake/fail"):
                self.fail(
                    args.get("action"), str(args["kind"]), args.get("times"), args.get("match")
                )
            elif route == ("POST", "/_fake/clear"):
                self.clear_faults()
            elif route == ("POST", "/_fake/ttl"):
                self.token_ttl = float(args["ttl"])
            elif route == ("POST", "/_fake/reset"):
                self.reset()
            elif route == ("GET", "/_fake/calls"):
                answer = self.counts()
            elif route == ("GET", "/_fake/requests"):
                answer = [asdict(r) for r in self.requests()]
            else:
                return _respond(start_response, 404, {"error": "no such control"})
        except (ValueError, KeyError, TypeError) as exc:
            return _respond(start_response, 400, {"error": str(exc)})
        return _respond(start_response, 200, answer)


_STAND_INS = frozenset({"/_stand/container-credentials", "/federation/credentials"})


def _respond(
    start_response: StartResponse,
    status: int,
    doc: Any,
    content_type: str = "application/json",
    extra: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    headers = [("Content-Type", content_type), ("Content-Length", str(len(raw))), *extra]
    start_response(f"{status} {HTTPStatus(status).phrase}", headers)
    return [raw]


def _read_body(environ: WSGIEnvironment) -> bytes:
    """Read the body and put it back, so moto (which reads it again) sees it intact."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 0:
        body: bytes = environ["wsgi.input"].read(length)
    elif environ.get("wsgi.input_terminated"):  # chunked upload: werkzeug marks the end
        body = environ["wsgi.input"].read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _parse(environ: WSGIEnvironment, body: bytes) -> FakeRequest | None:
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    key, region, service = match.groups() if match else (None, None, None)
    target = environ.get("HTTP_X_AMZ_TARGET")
    params: dict[str, Any]
    if target:  # JSON protocol (ECR): action in X-Amz-Target, parameters in the JSON body
        action = target.rsplit(".", 1)[-1]
        try:
            params = json.loads(body) if body.strip() else {}
        except ValueError:
            params = {}
    else:  # query protocol (STS): Action and parameters as form fields or in the query string
        fields = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
            fields.update(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))
        params = {k: v[0] if len(v) == 1 else v for k, v in fields.items()}
        action = params.get("Action", "")
    if not action or not isinstance(action, str):
        return None
    return FakeRequest(action, params, key, service, region, time.time())


def _error(
    req: FakeRequest, kind: str, is_json: bool, start_response: StartResponse
) -> list[bytes]:
    sts_status, sts_code, json_status, json_code, message = _ERRORS[kind]
    request_id = str(uuid.uuid4())
    if is_json:  # awsJson1_1 error: botocore reads __type (and x-amzn-ErrorType)
        return _respond(
            start_response,
            json_status,
            {"__type": json_code, "message": message},
            "application/x-amz-json-1.1",
            [("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", json_code)],
        )
    party = "Receiver" if sts_status >= 500 else "Sender"
    xml = (
        f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n'
        f"  <Error>\n    <Type>{party}</Type>\n    <Code>{sts_code}</Code>\n"
        f"    <Message>{escape(message)}</Message>\n  </Error>\n"
        f"  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
    )
    return _respond(
        start_response, sts_status, xml.encode(), "text/xml", [("x-amzn-RequestId", request_id)]
    )


def _drop(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """Abort a hung request the way a dying server does: close its socket unanswered."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    # werkzeug treats the failing write of this answer as a dropped connection, quietly.
    return _respond(start_response, 503, {"error": "fake went down"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakeaws",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ttl", type=float, default=43200.0, help="token lifetime, seconds")
    opts = parser.parse_args(argv)
    fake = FakeAws(token_ttl=opts.ttl, port=opts.port).start()
    # Handlers only queue a command: the main loop does the work outside signal context.
    commands: queue.SimpleQueue[str] = queue.SimpleQueue()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        names = {int(signal.SIGUSR1): "down", int(signal.SIGUSR2): "up"}
        commands.put(names.get(signum, "stop"))

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, on_signal)
    print(fake.url, flush=True)
    while True:
        try:
            command = commands.get(timeout=0.5)
        except queue.Empty:
            continue
        if command == "down":
            fake.go_down()
        elif command == "up":
            fake.come_up()
        else:
            fake.stop()
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
