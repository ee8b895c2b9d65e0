"""Fuzz every operation of ``/api/schema`` with schemathesis, as a member of a seeded org.

Twice: authenticated with an admin-scoped API key, and with an access token from ``POST /api/auth/token``
(obtained with a second factor, so step-up operations can succeed). Each operation gets schema-valid
(positive) and schema-breaking (negative) requests; every answer must

- not be a server error (5xx), except a documented 502/503/504 about a peer (a model provider, a connector);
- conform to the schema: a documented status code, content type, headers and body; and schema-breaking
  input must be refused (schemathesis' checks; not ``positive_data_acceptance``: the API also refuses
  schema-valid input for reasons JSON Schema does not state, such as an agent id of another org);
- be, when it is an error, the contract's shape: a JSON object with a non-empty ``detail`` and a ``code``;
- not succeed without the credential (schemathesis' ``ignored_auth``, where it applies).

Bounded for the test command: ``TWIG_FUZZ_EXAMPLES`` examples per operation and mode (default 4), derandomized
(the same requests every run). ``TWIG_FUZZ_EXAMPLES=500`` is the long run (docs/development.md).

State the fuzzer must not destroy is kept out of its reach: the credential it authenticates with is never a
path id it is given (it revokes and rolls another key, ``Seed.ensure`` brings back what an example deleted),
and the org settings are put back after every example (an IP allowlist or enforced SSO from one example would
refuse all the later ones). The org itself cannot be deleted through the API.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext, not_a_server_error, positive_data_acceptance
from schemathesis.core.failures import Failure

from tests.conftest import PASSWORD
from twig_auth.authz.models import Grant

from .conftest import Seed, access_token

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("TWIG_FUZZ_EXAMPLES", "4"))
VERBOSE = os.environ.get("TWIG_FUZZ_VERBOSE") == "1"  # print every request and answer (with pytest -s)
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# Operations whose path id may name one of the seeded objects (otherwise a generated id: 404).
PATH_OBJECTS = {"/api/agents/": "agent", "/api/data-sources/": "source", "/api/api-keys/": "api_key",
                "/api/grants/": "grant", "/api/policies/": "policy"}
# 5xx answers about a peer, when the operation documents the status: a model provider (the fuzzer may switch an
# agent to one; TWIG_LLM points at a closed port here), a connector's provider.
PEER_ERRORS = {"provider_error", "provider_not_configured", "provider_timeout", "connector_unavailable"}
# Destructive operations run after the others, so the others see the seeded objects at first try.
DESTRUCTIVE_LAST = ("DELETE", "/roll", "/api/auth/token/revoke")


class ContractErrorShape(Failure):
    """An error answer that is not ``{"detail": "<sentence>", "code": "<code>", ...}``."""

    code = "ST991"
    checks = ("contract_error_shape",)
    kind_title = "Error body is not the contract's shape"


class UnexpectedServerError(Failure):
    """A 5xx that is not one of the documented answers about a peer (a model provider, a connector)."""

    code = "ST992"
    checks = ("no_server_error",)
    kind_title = "Server error"


def _json(response: Any) -> Any:
    try:
        return json.loads(response.content or b"null")
    except ValueError:
        return None


@schemathesis.check
def contract_error_shape(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    if response.status_code < 400:
        return None
    body, label = _json(response), case.operation.label
    if not isinstance(body, dict):
        raise ContractErrorShape(operation=label, message=f"{response.status_code}: not a JSON object: "
                                                          f"{response.content[:200]!r}")
    if not isinstance(body.get("detail"), str) or not body["detail"].strip():
        raise ContractErrorShape(operation=label, message=f"{response.status_code}: no detail sentence: {body!r}")
    if not isinstance(body.get("code"), str) or not body["code"]:
        raise ContractErrorShape(operation=label, message=f"{response.status_code}: no code: {body!r}")
    return True


@schemathesis.check
def no_server_error(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    """schemathesis' ``not_a_server_error``, less the documented answers about peers this run may provoke
    (an agent switched to a model whose provider is not configured here, a connector)."""
    if response.status_code < 500:
        return None
    body = _json(response)
    code = body.get("code") if isinstance(body, dict) else None
    documented = str(response.status_code) in case.operation.definition.raw.get("responses", {})
    if documented and code in PEER_ERRORS:
        return True
    raise UnexpectedServerError(operation=case.operation.label, message=f"{response.status_code}: "
                                                                        f"{response.content[:300]!r}")


def operations(schema: Any) -> list[Any]:
    ops = [result.ok() for result in schema.get_all_operations()]
    return sorted(ops, key=lambda op: (any(m in op.label for m in DESTRUCTIVE_LAST), op.label))


def path_object(path: str) -> str | None:
    return next((name for prefix, name in PATH_OBJECTS.items() if path.startswith(prefix)), None)


def fuzz(schema: Any, errors: Any, seed: Seed, authorization: str) -> list[str]:
    """Run every operation in both modes; return one report per failing operation and mode (empty: all pass)."""
    failures: list[str] = []
    seen: dict[str, Counter[int]] = {}
    for operation in operations(schema):
        for mode in MODES:
            try:
                fuzz_operation(operation, mode, errors, seed, {"Authorization": authorization}, seen)
            except AssertionError as exc:
                failures.append(str(exc))
    print(f"\nStatus codes per operation ({EXAMPLES} examples per operation and mode):")  # shown with -s / -rP
    for label, counts in sorted(seen.items()):
        print(f"  {label:40} " + " ".join(f"{code}×{n}" for code, n in sorted(counts.items())))
    return failures


def real_body(label: str, case: Any, seed: Seed, ids: dict[str, str]) -> None:
    """Name seeded objects (and right credentials) in the operations that refer to them, so the fuzzer reaches
    their success paths too: a generated agent id, email or token is never one of the org's."""
    body = case.body if isinstance(case.body, dict) else None
    if label == "POST /api/auth/token":  # the manager: no second factor to send
        case.body = {"email": seed.manager.user.email, "password": PASSWORD, "org": "fuzz"}
    elif label in ("POST /api/auth/token/refresh", "POST /api/auth/token/revoke"):
        token = seed.fresh_refresh_token()  # the manager's: the fuzzer's own credential is never revoked
        case.body = {"refresh_token": token} if label.endswith("refresh") else {**(body or {}), "token": token}
    elif label in ("POST /api/query", "POST /api/chat") and body is not None:
        case.body = {**body, "agent": ids["agent"]}
    elif label == "POST /api/grants" and body is not None:  # "view": the seeded grant is "use"; a second is a 400
        Grant.objects.filter(org=seed.org, user=seed.manager.user, action="view").delete()
        case.body = {**body, "resource": f"agent:{ids['agent']}", "action": "view", "user": seed.manager.user.email,
                     "group": None}
    elif label in ("POST /api/policies", "PUT /api/policies/{id}") and isinstance((body or {}).get("policy"), dict):
        case.body = {**body, "policy": {**body["policy"], "resource": f"agent:{ids['agent']}", "action": "use"}}
    elif label == "GET /api/authz/explain":
        case.query = {**(case.query or {}), "member": seed.manager.user.email, "resource": f"agent:{ids['agent']}",
                      "action": "use"}


def fuzz_operation(operation: Any, mode: GenerationMode, errors: Any, seed: Seed, headers: dict[str, str],
                   seen: dict[str, Counter[int]]) -> None:
    name = path_object(operation.path)
    calls = itertools.count()

    @hypothesis.settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                         suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate],
                         report_multiple_bugs=False)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        ids = seed.ensure()
        real = next(calls) % 2 == 1  # every other example names real objects
        if real and name and mode.is_positive:
            case.path_parameters = {**(case.path_parameters or {}), "id": ids[name]}
        if real and mode.is_positive:
            real_body(operation.label, case, seed, ids)
        try:
            response = case.call(headers=headers)
            seen.setdefault(operation.label, Counter())[response.status_code] += 1
            if VERBOSE:
                print(f"{operation.label} [{mode.value}] {case.path_parameters or ''} {case.query or ''} "
                      f"{str(case.body)[:300]} -> {response.status_code} {response.text[:300]}")
            case.validate_response(response, headers=headers,
                                   additional_checks=[contract_error_shape, no_server_error],
                                   excluded_checks=[not_a_server_error, positive_data_acceptance])
        except (Exception, BaseExceptionGroup) as exc:  # the report, with the server's traceback if any
            details = "\n".join(errors.take())
            raise AssertionError(f"{operation.label} [{mode.value}]\n{exc}\n{details}") from None
        finally:
            errors.take()
            seed.restore_settings()

    run()


def test_fuzz_every_operation_with_an_api_key(schema, wsgi_app, seed):
    _, errors = wsgi_app
    failures = fuzz(schema, errors, seed, f"Bearer {seed.admin_key}")
    assert not failures, f"{len(failures)} failing operation(s):\n\n" + "\n\n".join(failures)


def test_fuzz_every_operation_with_an_access_token(schema, wsgi_app, seed):
    app, errors = wsgi_app
    failures = fuzz(schema, errors, seed, f"Bearer {access_token(app, seed)}")
    assert not failures, f"{len(failures)} failing operation(s):\n\n" + "\n\n".join(failures)
