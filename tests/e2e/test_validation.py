"""Bad input on every write endpoint: 422 problem+json naming the field; nothing recorded.

Bodies start from a minimal valid one built from the endpoint's schema (conftest
`Schemas`), and one field at a time is made wrong: wrong type, out of range, bad
pattern, too long or short, missing. Path and query parameters get the same treatment.
The key used has the endpoint's own role, so only validation stands in the way.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError

from konbit.api.schemas import Grams, Polygon
from konbit.roles import Role

PROBLEM = "application/problem+json"
Mutation = tuple[str, Any, str]  # (label, bad value, the field path as the API names it)
MISSING = object()


def bad_values(
    schemas: Any, schema: dict[str, Any], field: str, *, body: bool = False
) -> Iterator[Mutation]:
    """Values the (resolved) schema refuses, each with the field path the error names.

    In a body (JSON), integers are strict: booleans and numeric strings are refused too.
    """
    s = schemas.non_null(schemas.resolve(schema))
    kind = s.get("type")
    if "enum" in s:
        yield "not in enum", "not-a-choice", field
        yield "wrong type", 7, field
        return
    if kind == "integer":
        yield "string", "abc", field
        yield "fraction", 1.5, field
        yield "list", [1], field
        if body:
            yield "boolean", True, field  # `"grams": true` must not record a 1 g lot
            yield "numeric string", "1", field
            low, high = s.get("minimum"), s.get("maximum")
            for label, value in (("-1", -1), ("2^64", 2**64), ("2^256", 2**256)):
                if (low is not None and value < low) or (high is not None and value > high):
                    yield label, value, field
        if "minimum" in s:
            yield "below minimum", int(s["minimum"]) - 1, field
        if "maximum" in s:
            yield "above maximum", int(s["maximum"]) + 1, field
    elif kind == "boolean":
        yield "word", "maybe", field
        yield "number", 2, field
    elif kind == "string":
        yield "number", 123, field
        yield "object", {"a": 1}, field
        if "pattern" in s:
            text_only = "\\x00" in s["pattern"]  # free text: only control characters are out
            yield "pattern", "nul\x00inside" if text_only else "not matching!", field
        if "maxLength" in s and s["maxLength"] <= 10_000:
            yield "too long", "a" * (s["maxLength"] + 1), field
        if s.get("minLength", 0) >= 1:
            yield "too short", "", field
    elif kind == "array" and "prefixItems" in s:  # a tuple: each position its own schema
        yield "not a list", "nope", field
        items = schemas.valid(s)
        yield "too few items", items[:-1], f"{field}.{len(items) - 1}"
        yield "too many items", [*items, items[-1]], field
        for i, sub in enumerate(s["prefixItems"]):
            for label, value, path in bad_values(schemas, sub, f"{field}.{i}", body=body):
                yield f"item {i} {label}", [*items[:i], value, *items[i + 1 :]], path
    elif kind == "array":
        yield "not a list", "nope", field
        item = schemas.valid(s["items"])
        if s.get("minItems", 0) >= 1:
            yield "too few items", [item] * (s["minItems"] - 1), field
        if "maxItems" in s:
            yield "too many items", [item] * (s["maxItems"] + 1), field
        for label, value, path in bad_values(schemas, s["items"], f"{field}.0", body=body):
            yield f"item {label}", [value], path
    elif kind == "object":
        yield "not an object", "nope", field
        props = s.get("properties", {})
        base = schemas.valid(s)
        for name, prop in props.items():
            for label, value, path in bad_values(schemas, prop, f"{field}.{name}", body=body):
                yield f"{name} {label}", _with(base, name, value), path
            if name in s.get("required", []):
                yield f"{name} missing", _with(base, name, MISSING), f"{field}.{name}"


def _with(base: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    if value is MISSING:
        out.pop(name, None)
    else:
        out[name] = value
    return out


def body_mutations(schemas: Any, schema: dict[str, Any]) -> Iterator[tuple[str, Any, str]]:
    """(label, whole bad body, field) with one field wrong at a time."""
    s = schemas.resolve(schema)
    base = schemas.valid(s)
    required = s.get("required", [])
    for name, prop in s.get("properties", {}).items():
        if name in required:
            yield f"{name} missing", _with(base, name, MISSING), name
            if "anyOf" not in prop:
                yield f"{name} null", _with(base, name, None), name
        for label, value, path in bad_values(schemas, prop, name, body=True):
            yield f"{name} {label}", _with(base, name, value), path


def assert_422(reply: httpx.Response, field: str) -> dict[str, Any]:
    assert reply.status_code == 422, f"{reply.status_code}: {reply.text}"
    assert reply.headers["content-type"].startswith(PROBLEM), reply.headers["content-type"]
    body: dict[str, Any] = reply.json()
    named = [e["field"] for e in body.get("errors", [])]
    assert field in named, f"{field!r} not in errors {named}: {body}"
    assert field in body["detail"], body
    return body


def key_for(api: Any, op: Any) -> str:
    return api.key(op.role or Role.COOPERATIVE)


def test_bad_bodies_are_422_naming_the_field(
    module_api: Any, schemas: Any, write_operation: Any
) -> None:
    op = write_operation
    schema = op.body_schema()
    if schema is None:
        pytest.skip("no body")
    url = schemas.path_for(op)
    before = module_api.counts()
    cases = list(body_mutations(schemas, schema))
    assert cases
    with module_api.client(key_for(module_api, op)) as client:
        for label, body, field in cases:
            reply = client.request(op.method, url, json=body)
            try:
                assert_422(reply, field)
            except AssertionError as exc:
                raise AssertionError(f"{op.id} with {label} ({body!r}): {exc}") from None
            assert module_api.counts() == before, f"{op.id} with {label} recorded something"
        if op.body_required():
            for label, kwargs in {
                "no body": {},
                "a list": {"json": [schemas.body_for(op)]},
                "a string": {"json": "x"},
                "text/plain": {"content": b"x", "headers": {"content-type": "text/plain"}},
            }.items():
                reply = client.request(op.method, url, **kwargs)
                try:
                    assert_422(reply, "body")
                except AssertionError as exc:
                    raise AssertionError(f"{op.id} with {label}: {exc}") from None
    assert module_api.counts() == before


def test_bad_path_and_query_parameters_are_422(
    module_api: Any, schemas: Any, write_operation: Any
) -> None:
    op = write_operation
    body = schemas.body_for(op)
    kwargs = {} if body is None else {"json": body}
    cases: list[tuple[str, str, dict[str, str], str]] = []
    for param in op.params("path"):
        for label, value, field in bad_values(schemas, param["schema"], param["name"]):
            if isinstance(value, (int, str)) and not isinstance(value, bool):
                url = schemas.path_for(op, {param["name"]: value})
                cases.append((label, url, {}, field))
        if param["schema"].get("type") == "string":
            short = schemas.path_for(op, {param["name"]: "0x" + "1" * 39})
            cases.append(("short address", short, {}, param["name"]))
    for param in op.params("query"):
        for label, value, field in bad_values(schemas, param["schema"], param["name"]):
            if isinstance(value, (int, str)) and not isinstance(value, bool):
                cases.append((label, schemas.path_for(op), {param["name"]: str(value)}, field))
    if not cases:
        pytest.skip("no parameters")
    before = module_api.counts()
    with module_api.client(key_for(module_api, op)) as client:
        for label, url, params, field in cases:
            reply = client.request(op.method, url, params=params, **kwargs)
            try:
                assert_422(reply, field)
            except AssertionError as exc:
                raise AssertionError(f"{op.id} {url} {params} ({label}): {exc}") from None
            assert module_api.counts() == before, f"{op.id} {url} ({label}) recorded something"


HASH = "0x" + "ab" * 32


def test_rules_beyond_the_schema_are_422(module_api: Any) -> None:
    """Checks made in models or handlers: polygons, the operator role, raw transactions."""
    api = module_api
    before = api.counts()
    coop = api.client(api.keys[Role.COOPERATIVE])
    op = api.client(api.operator_key)
    for polygon in (
        {"type": "Point", "coordinates": [1, 2]},
        {"type": "Polygon", "coordinates": []},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]},  # 3 positions
        {"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [1, 1], [0, 0]]]},  # longitude
        {"type": "Polygon", "coordinates": [[[0, 0], ["a", 0], [1, 1], [0, 0]]]},
    ):
        reply = coop.post("/cooperative/farmers", json={"name": "A", "plot_polygon": polygon})
        assert reply.status_code == 422, reply.text
        assert any(e["field"].startswith("plot_polygon.") for e in reply.json()["errors"]), reply
    assert_422(
        coop.post("/cooperative/farmers", json={"name": "A", "phone": "0937000001"}), "phone"
    )
    reply = op.post("/operator/organisations", json={"name": "Op", "role": "operator"})
    assert reply.status_code == 422 and "role" in reply.json()["detail"], reply.text
    assert reply.headers["content-type"].startswith(PROBLEM)
    reply = coop.post("/transactions/raw", json={"raw": "0x00"})
    assert reply.status_code == 422 and "raw" in reply.json()["detail"], reply.text
    for path, body in (
        ("/operator/organisations", {"name": "Idem", "role": "exporter"}),
        ("/operator/faucet", {"address": api.addresses[Role.EXPORTER], "amount": 1}),
    ):
        reply = op.post(path, json=body, headers={"Idempotency-Key": "k" * 101})
        assert reply.status_code == 422 and "Idempotency-Key" in reply.json()["detail"], reply.text
    reply = coop.post(
        "/cooperative/farmers", json={"name": "Idem"}, headers={"Idempotency-Key": "k" * 101}
    )
    assert reply.status_code == 422 and "Idempotency-Key" in reply.json()["detail"], reply.text
    assert api.counts() == before


def test_open_polygon_rings_are_closed() -> None:
    """JSON Schema cannot ask for "last position equal to the first": the API closes a ring."""
    ring = [(0, 0), (1, 0), (1, 1), (0, 1)]
    closed = Polygon.model_validate({"type": "Polygon", "coordinates": [ring, [*ring, ring[0]]]})
    assert closed.coordinates == [[*ring, ring[0]]] * 2


def test_handler_422s_have_the_same_shape(module_api: Any) -> None:
    op = module_api.client(module_api.operator_key)
    coop = module_api.client(module_api.keys[Role.COOPERATIVE])
    assert_422(op.post("/operator/organisations", json={"name": "Op", "role": "operator"}), "role")
    assert_422(coop.post("/transactions/raw", json={"raw": "0x00"}), "raw")


def test_unparseable_json_names_the_body(module_api: Any) -> None:
    coop = module_api.client(module_api.keys[Role.COOPERATIVE])
    before = module_api.counts()
    for content in (b"{not json", b'{"name": "\xff\xfe"}'):  # not JSON; not UTF-8
        reply = coop.post(
            "/cooperative/lots", content=content, headers={"content-type": "application/json"}
        )
        assert_422(reply, "body")
    assert module_api.counts() == before


def test_whole_floats_are_integers_as_in_json_schema() -> None:
    """`3.0` is an integer to JSON Schema, so the API takes it as 3 (while a float is exact)."""
    grams = TypeAdapter(Grams)
    assert grams.validate_json("3.0") == 3 and grams.validate_json("3") == 3
    for refused in ("3.5", '"3"', "true", "0.0", str(float(2**60)), "1e30"):
        with pytest.raises(ValidationError):
            grams.validate_json(refused)


def test_the_document_spells_integer_bounds_exactly(schemas: Any) -> None:
    """FastAPI's OpenAPI model turns bounds into floats; 2**64 - 1 must not read as 2**64."""
    components = schemas.spec["components"]["schemas"]
    assert components["OrderIn"]["properties"]["grams"]["maximum"] == 2**64 - 1
    assert components["LotIn"]["properties"]["grams"]["maximum"] == 2**40 - 1  # 40-bit lots
    assert components["ConsignmentIn"]["properties"]["order_id"]["maximum"] == 2**63 - 1
    assert components["FaucetIn"]["properties"]["amount"]["maximum"] == 2**128 - 1
    assert components["LotIn"]["properties"]["grade"]["maximum"] == 255
    assert type(components["LotIn"]["properties"]["grade"]["maximum"]) is int


def test_ids_beyond_storage_never_5xx(module_api: Any, schemas: Any) -> None:
    """Every operation with an integer path parameter, with the largest ids it might take."""
    api = module_api
    faults = []
    for op in schemas.operations():
        names = [p["name"] for p in op.params("path") if p["schema"].get("type") == "integer"]
        if not names:
            continue
        body = schemas.body_for(op)
        for big in (2**31, 2**63, 2**64 - 1):
            url = schemas.path_for(op, dict.fromkeys(names, big))
            with api.client(api.key(op.role or Role.OPERATOR)) as client:
                reply = client.request(op.method, url, **({} if body is None else {"json": body}))
            if reply.status_code >= 500:
                faults.append(f"{op.method} {url} -> {reply.status_code}")
    assert not faults, "\n".join(faults)
