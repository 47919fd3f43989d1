"""ECR answers the loopback fake (:mod:`tests.fakeaws`) adds to moto's, for ``xecr policy``.

This module owns two things moto 5.2.1 lacks, answered with the real request and response
shapes of botocore's ECR service model (JSON 1.1, target
``AmazonEC2ContainerRegistry_V20150921.<Action>``):

* repository creation templates: CreateRepositoryCreationTemplate (``prefix`` and
  ``appliedFor`` required; TemplateAlreadyExistsException when the prefix has one),
  UpdateRepositoryCreationTemplate (TemplateNotFoundException when it has none),
  DescribeRepositoryCreationTemplates (``prefixes`` filter, ``maxResults``/``nextToken``
  paging) and DeleteRepositoryCreationTemplate. A template is ``{prefix, description,
  encryptionConfiguration, resourceTags, imageTagMutability, repositoryPolicy,
  lifecyclePolicy, appliedFor, customRoleArn, createdAt, updatedAt}`` with ECR's defaults
  (AES256, MUTABLE), per account (of the caller's key, as moto maps it) and region. A
  prefix outside ECR's pattern, an empty or unknown ``appliedFor`` and a repositoryPolicy
  over 10240 characters are ValidationExceptions;
* DescribeRepositories paging, which moto ignores: ``maxResults`` (1-1000, default 100)
  repositories a page, by name, and an opaque ``nextToken`` for the rest.
  ``page_cap`` (None: ECR's 1000) lowers the largest page, so a test can make paging
  happen with few repositories.

Templates live in this object (one per FakeAws), not in moto; ``reset_templates`` wipes them.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from tests.fakeaws import FakeRequest

_JSON = "application/x-amz-json-1.1"
_PREFIX = re.compile(
    r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$"
)
_APPLIED_FOR = frozenset({"REPLICATION", "PULL_THROUGH_CACHE", "CREATE_ON_PUSH"})
_TEMPLATE_KEYS = (
    "description",
    "encryptionConfiguration",
    "resourceTags",
    "imageTagMutability",
    "imageTagMutabilityExclusionFilters",
    "repositoryPolicy",
    "lifecyclePolicy",
    "appliedFor",
    "customRoleArn",
)
_TEMPLATE_ACTIONS = frozenset(
    {
        "CreateRepositoryCreationTemplate",
        "UpdateRepositoryCreationTemplate",
        "DescribeRepositoryCreationTemplates",
        "DeleteRepositoryCreationTemplate",
    }
)


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class EcrExtras:
    """What the fake answers itself instead of moto; see the module docstring."""

    def __init__(self, moto: WSGIApplication) -> None:
        self._moto = moto
        self._lock = threading.Lock()
        # (account, region) -> prefix -> template
        self._templates: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.page_cap: int | None = None

    def reset_templates(self) -> None:
        with self._lock:
            self._templates.clear()

    def answer(
        self, req: FakeRequest, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """The answer to ``req`` when it is ours, else None (moto answers)."""
        if req.service != "ecr":
            return None
        if req.action == "DescribeRepositories" and not req.params.get("repositoryNames"):
            return self._describe_page(req, environ, start_response)
        if req.action not in _TEMPLATE_ACTIONS:
            return None
        try:
            with self._lock:
                doc = self._template_call(req)
        except _Refused as exc:
            return _respond(
                start_response,
                400,
                {"__type": exc.code, "message": exc.message},
                [("x-amzn-ErrorType", exc.code)],
            )
        return _respond(start_response, 200, doc)

    # -- creation templates --------------------------------------------------------------
    def _template_call(self, req: FakeRequest) -> dict[str, Any]:
        from moto.iam.models import get_account_id_from

        account = get_account_id_from(req.access_key_id or "")
        templates = self._templates.setdefault((account, req.region or ""), {})
        params = req.params
        if req.action == "DescribeRepositoryCreationTemplates":
            return {"registryId": account, **_page(templates, params)}
        prefix = params.get("prefix")
        if not isinstance(prefix, str) or not 1 <= len(prefix) <= 256 or not _PREFIX.match(prefix):
            raise _Refused(
                "ValidationException",
                f"1 validation error detected: Value '{prefix}' at 'prefix' failed to satisfy "
                f"constraint: Member must satisfy regular expression pattern: {_PREFIX.pattern}",
            )
        handler: Callable[[dict[str, dict[str, Any]], str, dict[str, Any], str], dict[str, Any]]
        handler = {
            "CreateRepositoryCreationTemplate": _create,
            "UpdateRepositoryCreationTemplate": _update,
            "DeleteRepositoryCreationTemplate": _delete,
        }[req.action]
        return {
            "registryId": account,
            "repositoryCreationTemplate": handler(templates, prefix, params, account),
        }

    # -- DescribeRepositories paging -----------------------------------------------------
    def _describe_page(
        self, req: FakeRequest, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        status, headers, raw = call_wsgi(self._moto, environ)
        if not status.startswith("200"):
            start_response(status, headers)
            return [raw]
        every = sorted(json.loads(raw).get("repositories", []), key=lambda r: r["repositoryName"])
        size = int(req.params.get("maxResults") or 100)
        if not 1 <= size <= 1000:
            return _respond(
                start_response,
                400,
                {
                    "__type": "ValidationException",
                    "message": "1 validation error detected: Value at 'maxResults' failed to "
                    "satisfy constraint: Member must have value less than or equal to 1000",
                },
                [("x-amzn-ErrorType", "ValidationException")],
            )
        size = min(size, self.page_cap or 1000)
        after = _untoken(req.params.get("nextToken"))
        rest = [r for r in every if after is None or r["repositoryName"] > after]
        doc: dict[str, Any] = {"repositories": rest[:size]}
        if len(rest) > size:
            doc["nextToken"] = _token(rest[size - 1]["repositoryName"])
        return _respond(start_response, 200, doc)


def _validate(params: dict[str, Any], creating: bool) -> None:
    applied = params.get("appliedFor")
    if (creating or applied is not None) and (
        not isinstance(applied, list) or not applied or not set(applied) <= _APPLIED_FOR
    ):
        raise _Refused(
            "ValidationException",
            "1 validation error detected: Value at 'appliedFor' failed to satisfy constraint: "
            f"Member must satisfy enum value set: {sorted(_APPLIED_FOR)}",
        )
    text = params.get("repositoryPolicy")
    if isinstance(text, str) and len(text) > 10240:
        raise _Refused(
            "ValidationException",
            "1 validation error detected: Value at 'repositoryPolicy' failed to satisfy "
            "constraint: Member must have length less than or equal to 10240",
        )


def _create(
    templates: dict[str, dict[str, Any]], prefix: str, params: dict[str, Any], account: str
) -> dict[str, Any]:
    if prefix in templates:
        raise _Refused(
            "TemplateAlreadyExistsException",
            f"The repository creation template with prefix '{prefix}' already exists in the "
            f"registry with id '{account}'",
        )
    _validate(params, creating=True)
    now = round(time.time(), 3)
    template: dict[str, Any] = {
        "prefix": prefix,
        "encryptionConfiguration": {"encryptionType": "AES256"},
        "resourceTags": [],
        "imageTagMutability": "MUTABLE",
        "createdAt": now,
        "updatedAt": now,
    }
    template.update({k: params[k] for k in _TEMPLATE_KEYS if k in params})
    templates[prefix] = template
    return dict(template)


def _must_exist(templates: dict[str, dict[str, Any]], prefix: str, account: str) -> None:
    if prefix not in templates:
        raise _Refused(
            "TemplateNotFoundException",
            f"The repository creation template with prefix '{prefix}' does not exist in the "
            f"registry with id '{account}'",
        )


def _update(
    templates: dict[str, dict[str, Any]], prefix: str, params: dict[str, Any], account: str
) -> dict[str, Any]:
    _must_exist(templates, prefix, account)
    _validate(params, creating=False)
    template = templates[prefix]
    template.update({k: params[k] for k in _TEMPLATE_KEYS if k in params})
    template["updatedAt"] = round(time.time(), 3)
    return dict(template)


def _delete(
    templates: dict[str, dict[str, Any]], prefix: str, params: dict[str, Any], account: str
) -> dict[str, Any]:
    _must_exist(templates, prefix, account)
    return templates.pop(prefix)


def _page(templates: dict[str, dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    wanted = params.get("prefixes") or sorted(templates)
    found = [dict(templates[p]) for p in sorted(wanted) if p in templates]
    size = int(params.get("maxResults") or 100)
    after = _untoken(params.get("nextToken"))
    rest = [t for t in found if after is None or t["prefix"] > after]
    doc: dict[str, Any] = {"repositoryCreationTemplates": rest[:size]}
    if len(rest) > size:
        doc["nextToken"] = _token(rest[size - 1]["prefix"])
    return doc


def _token(last: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last}).encode()).decode()


def _untoken(token: Any) -> str | None:
    if not token:
        return None
    try:
        return str(json.loads(base64.urlsafe_b64decode(str(token)))["after"])
    except (ValueError, KeyError, TypeError):
        return None


def call_wsgi(
    app: WSGIApplication, environ: WSGIEnvironment
) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run a WSGI app (moto) on the request and return its answer instead of sending it."""
    captured: list[Any] = []

    def capture(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
        captured[:] = [status, headers]
        return lambda _data: None

    result = app(environ, capture)
    try:
        raw = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured[0], captured[1], raw


def _respond(
    start_response: StartResponse,
    status: int,
    doc: Any,
    extra: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    raw = json.dumps(doc).encode()
    headers = [("Content-Type", _JSON), ("Content-Length", str(len(raw))), *extra]
    start_response(f"{status} {HTTPStatus(status).phrase}", headers)
    return [raw]
