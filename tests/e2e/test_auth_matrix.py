"""Every write endpoint, every role: 403 for the wrong role, 401 without a valid key.

The endpoints come from the app's OpenAPI document (conftest `write_operation`), so a new
endpoint is covered as soon as it exists; its path prefix says which role it needs. The
bodies sent are valid for the schema, so a 403 comes from the role check and not from
validation. After each refused request the tables a write may touch hold the same rows.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import jsonschema
import pytest

from konbit.roles import Role

PROBLEM = "application/problem+json"


def refused(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, f"{reply.status_code}: {reply.text}"
    assert reply.headers["content-type"].startswith(PROBLEM), reply.headers["content-type"]
    body: dict[str, Any] = reply.json()
    assert body["status"] == status and body["detail"], body
    return body


def request_for(api: Any, schemas: Any, op: Any) -> dict[str, Any]:
    """Path and valid body for ``op``; ids point at live rows so a bypass would show."""
    overrides: dict[str, Any] = {}
    for param in op.params("path"):
        if param["name"] == "address":
            overrides["address"] = api.addresses[Role.COOPERATIVE]
    body = schemas.body_for(op)
    request: dict[str, Any] = {"method": op.method, "url": schemas.path_for(op, overrides)}
    if body is not None:
        request["json"] = body
    return request


def test_served_document_is_the_apps(module_api: Any, schemas: Any) -> None:
    """The endpoints enumerated at collection are the ones the server describes."""
    served = httpx.get(f"{module_api.url}/openapi.json").json()
    assert {p: sorted(o) for p, o in served["paths"].items()} == {
        p: sorted(o) for p, o in schemas.spec["paths"].items()
    }


def test_every_write_has_an_owner(write_operation: Any) -> None:
    """A write under an unknown prefix must be mapped (role, any key or public) in conftest."""
    assert write_operation.role is not None or write_operation.any_role, (
        f"{write_operation.id}: add its prefix to ROLE_BY_PREFIX, ANY_ROLE or PUBLIC_PREFIXES"
    )


def test_the_bodies_sent_are_valid(schemas: Any, write_operation: Any) -> None:
    schema = write_operation.body_schema()
    if schema is None:
        pytest.skip("no body")
    jsonschema.validate(schemas.body_for(write_operation), schemas.resolve(schema))


def test_wrong_role_is_403_and_records_nothing(
    module_api: Any, schemas: Any, write_operation: Any
) -> None:
    op = write_operation
    if op.role is None:
        pytest.skip("any authenticated role may call it: 401 only")
    request = request_for(module_api, schemas, op)
    before = module_api.counts()
    for role in Role:
        if role is op.role:
            continue
        with module_api.client(module_api.key(role)) as client:
            body = refused(client.request(**request), 403)
        assert op.role.value in body["detail"] and role.value in body["detail"], body
        assert module_api.counts() == before, f"{role.value} on {op.id} recorded something"
        # ?wait=true changes nothing either
        with module_api.client(module_api.key(role)) as client:
            refused(client.request(**request, params={"wait": "true"}), 403)
        assert module_api.counts() == before


@pytest.fixture(scope="module")
def revoked_keys(module_api: Any) -> dict[Role, str]:
    """A revoked key of every role, revoked through DELETE /operator/keys/{id}."""
    from konbit.access.keys import issue_key

    op = module_api.client(module_api.operator_key)
    keys: dict[Role, str] = {}
    for role in Role:
        if role is Role.OPERATOR:
            operator = module_api.runtime.operator()
            row, secret = issue_key(module_api.runtime.engine, operator, role, "to revoke")
            key_id = row.id
        else:
            reply = op.post(
                f"/operator/organisations/{module_api.addresses[role]}/keys",
                json={"label": "to revoke"},
            )
            assert reply.status_code == 201, reply.text
            key_id, secret = reply.json()["id"], reply.json()["key"]
        with module_api.client(secret) as client:  # it works before: a role check answers
            other = "/arbiter" if role is not Role.ARBITER else "/inspector"
            path = (
                f"{other}/orders/1/resolve"
                if other == "/arbiter"
                else f"{other}/lots/1/inspections"
            )
            assert client.post(path, json={}).status_code in (403, 422)
        assert op.delete(f"/operator/keys/{key_id}").status_code == 204
        assert op.delete(f"/operator/keys/{key_id}").status_code == 404  # already revoked
        keys[role] = secret
    return keys


BAD_HEADERS = {
    "no header": None,
    "empty": "",
    "basic scheme": "Basic a29uYml0OmtvbmJpdA==",
    "bearer without key": "Bearer",
    "key without scheme": "kb_" + "A" * 43,
    "unknown key": "Bearer kb_" + secrets.token_urlsafe(32),
    "not a kb key": "Bearer " + "x" * 20,
}


def test_no_valid_key_is_401_and_records_nothing(
    module_api: Any, schemas: Any, write_operation: Any, revoked_keys: dict[Role, str]
) -> None:
    op = write_operation
    request = request_for(module_api, schemas, op)
    before = module_api.counts()
    headers = {
        **BAD_HEADERS,
        "revoked key of the right role": f"Bearer {revoked_keys[op.role or Role.COOPERATIVE]}",
        "revoked operator key": f"Bearer {revoked_keys[Role.OPERATOR]}",
    }
    for label, header in headers.items():
        sent = {} if header is None else {"Authorization": header}
        with httpx.Client(base_url=module_api.url, headers=sent, timeout=60) as client:
            reply = client.request(**request)
        body = refused(reply, 401)
        assert reply.headers.get("www-authenticate") == "Bearer", label
        assert "key" in body["detail"], (label, body)
        assert module_api.counts() == before, f"{label} on {op.id} recorded something"


def test_role_check_precedes_body_validation(module_api: Any) -> None:
    """A wrong role or no key is refused before the body is looked at (no 422 leaks first).

    Unparseable JSON is the exception: FastAPI reads the body before any dependency runs.
    """
    bad = {"farmer": "nope", "crop": -1}
    before = module_api.counts()
    with module_api.client(module_api.keys[Role.EXPORTER]) as exporter:
        refused(exporter.post("/cooperative/lots", json=bad), 403)
        refused(exporter.post("/cooperative/lots/0/split", json=bad), 403)
    with module_api.client(None) as anonymous:
        refused(anonymous.post("/cooperative/lots", json=bad), 401)
        refused(anonymous.post("/cooperative/lots/0/split", json=bad), 401)
        refused(
            anonymous.post(
                "/cooperative/lots",
                content=b"{not json",
                headers={"content-type": "application/json"},
            ),
            422,
        )
    assert module_api.counts() == before
