"""A deployed chain, a migrated database and the live API, driven over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from served_api import Api, serve_api
from sqlalchemy import text
from sqlalchemy.engine import make_url

from konbit.chain.local import LocalChain
from konbit.db.engine import make_engine
from konbit.roles import Role
from konbit.settings import Settings


@pytest.fixture
def api(anvil: LocalChain, database_url: str, tmp_path: Path, live_server: Any) -> Iterator[Api]:
    with serve_api(anvil, database_url, tmp_path, live_server) as served:
        yield served


def _fresh_postgres_database(server_url: str) -> str:
    name = f"konbit_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_api(
    request: pytest.FixtureRequest,
    anvil: LocalChain,
    tmp_path_factory: pytest.TempPathFactory,
    live_server: Any,
) -> Iterator[Api]:
    """Like `api`, but one per test module and database kind, already onboarded:
    ``keys[role]`` / ``addresses[role]`` for every market role."""
    folder = tmp_path_factory.mktemp("api")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'konbit.db'}"
    else:
        url = _fresh_postgres_database(request.getfixturevalue("postgres_server"))
    with serve_api(anvil, url, folder, live_server) as served:
        yield served.onboard()


@pytest.fixture(scope="module")
def module_api_sqlite(
    anvil: LocalChain, tmp_path_factory: pytest.TempPathFactory, live_server: Any
) -> Iterator[Api]:
    """One onboarded API per module on SQLite only (the OpenAPI fuzz: speed over breadth)."""
    folder = tmp_path_factory.mktemp("api")
    with serve_api(anvil, f"sqlite:///{folder / 'konbit.db'}", folder, live_server) as served:
        yield served.onboard()


# --- The API's own description: which operations exist, who may call them, valid inputs ---

# Path prefix -> the one role its writes need. A write under no prefix here must be in
# ANY_ROLE (any valid key) or PUBLIC_PREFIXES, or the auth matrix fails and asks for it.
ROLE_BY_PREFIX: dict[str, Role] = {
    "/operator": Role.OPERATOR,
    "/cooperative": Role.COOPERATIVE,
    "/exporter": Role.EXPORTER,
    "/carrier": Role.LOGISTICS,
    "/financier": Role.FINANCIER,
    "/inspector": Role.INSPECTOR,
    "/arbiter": Role.ARBITER,
    # A cooperative's SMS agents (the rest of /sms and /ussd are providers' webhooks).
    "/sms/agents": Role.COOPERATIVE,
}
ANY_ROLE = ("/transactions/raw",)
PUBLIC_PREFIXES = ("/healthz", "/meta", "/trace", "/sms", "/ussd", "/webhooks", "/01/")
WRITE_METHODS = ("post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str
    spec: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def is_write(self) -> bool:
        return self.method.lower() in WRITE_METHODS

    @property
    def role(self) -> Role | None:
        """The role the path's prefix demands; None for ANY_ROLE, public or unmapped."""
        for prefix, role in ROLE_BY_PREFIX.items():
            if self.path == prefix or self.path.startswith(prefix + "/"):
                return role
        return None

    @property
    def any_role(self) -> bool:
        return self.path in ANY_ROLE

    @property
    def public(self) -> bool:
        return self.role is None and not self.any_role and self.path.startswith(PUBLIC_PREFIXES)

    def params(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p["in"] == where]

    def body_schema(self) -> dict[str, Any] | None:
        content = (self.spec.get("requestBody") or {}).get("content", {})
        media = content.get("application/json")
        return None if media is None else media.get("schema")

    def body_required(self) -> bool:
        return bool((self.spec.get("requestBody") or {}).get("required"))


def app_spec() -> dict[str, Any]:
    """The OpenAPI document of the app as built (no server, no database)."""
    global _SPEC
    if _SPEC is None:
        import tempfile

        from konbit.server import create_app

        settings = Settings.load(env_file=None, environ={}, data_dir=Path(tempfile.mkdtemp()))
        _SPEC = create_app(settings, background=False).openapi()
    return _SPEC


_SPEC: dict[str, Any] | None = None


def operations(spec: dict[str, Any] | None = None) -> list[Operation]:
    spec = spec or app_spec()
    return [
        Operation(method.upper(), path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`write_operation`: every non-public write; `read_operation`: every GET;
    `operation`: every operation."""
    if "write_operation" in metafunc.fixturenames:
        ops = [o for o in operations() if o.is_write and not o.public]
        metafunc.parametrize("write_operation", ops, ids=[o.id for o in ops])
    if "read_operation" in metafunc.fixturenames:
        ops = [o for o in operations() if o.method == "GET"]
        metafunc.parametrize("read_operation", ops, ids=[o.id for o in ops])
    if "operation" in metafunc.fixturenames:
        ops = operations()
        metafunc.parametrize("operation", ops, ids=[o.id for o in ops])


class Schemas:
    """Reads an OpenAPI document's JSON Schemas: resolves refs, builds minimal valid values."""

    ADDRESS = "0x" + "11" * 20
    HASH = "0x" + "ab" * 32
    # Known patterns -> a value that matches; anything else must match "x"-strings.
    BY_PATTERN: ClassVar[dict[str, str]] = {
        r"^0x[0-9a-fA-F]{40}$": ADDRESS,
        r"^0x[0-9a-fA-F]{64}$": HASH,
        r"^[0-9bcdefghjkmnpqrstuvwxyz]{1,12}$": "d7ns5qzk",
        r"^[0-9bcdefghjkmnpqrstuvwxyz]{1,5}$": "d7ns5",
        r"^\+[1-9][0-9]{6,14}$": "+50937000001",
        r"^0x(?:[0-9a-fA-F]{2})+$": "0x00",
        r"^[^\x00-\x1f\x7f-\x9f]*$": "Konbit text",
    }
    # Fields whose first enum value is refused by the handler, not by the schema.
    BY_FIELD: ClassVar[dict[str, str]] = {"role": "cooperative"}

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def operations(self) -> list[Operation]:
        return operations(self.spec)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The schema with every `$ref` inlined (the API's schemas are not recursive)."""
        if "$ref" in schema:
            target: Any = self.spec
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            return self.resolve(merged)
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key == "properties":
                out[key] = {k: self.resolve(v) for k, v in value.items()}
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                out[key] = self.resolve(value)
            elif key in ("anyOf", "oneOf", "allOf"):
                out[key] = [self.resolve(v) for v in value]
            else:
                out[key] = value
        return out

    @staticmethod
    def non_null(schema: dict[str, Any]) -> dict[str, Any]:
        """`X | None` as X (FastAPI writes it as anyOf [X, null])."""
        if "anyOf" in schema:
            options = [s for s in schema["anyOf"] if s.get("type") != "null"]
            if len(options) == 1:
                rest = {k: v for k, v in schema.items() if k != "anyOf"}
                return {**rest, **options[0]}
        return schema

    def valid(self, schema: dict[str, Any], name: str = "") -> Any:
        """A minimal value the schema accepts (required fields only for objects)."""
        schema = self.non_null(self.resolve(schema))
        if name in self.BY_FIELD:
            return self.BY_FIELD[name]
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type")
        if kind == "object":
            props = schema.get("properties", {})
            return {k: self.valid(props[k], k) for k in schema.get("required", [])}
        if kind == "array" and "prefixItems" in schema:
            return [self.valid(item) for item in schema["prefixItems"]]
        if kind == "array":
            return [self.valid(schema["items"]) for _ in range(max(1, schema.get("minItems", 1)))]
        if kind == "integer":
            low = int(schema.get("minimum", 1))
            return max(low, 1) if int(schema.get("maximum", 1)) >= 1 else low
        if kind == "number":
            return 1
        if kind == "boolean":
            return True
        if kind == "string":
            if "pattern" in schema:
                return self.BY_PATTERN[schema["pattern"]]
            return "x" * max(1, schema.get("minLength", 1))
        raise AssertionError(f"no valid value for {name or 'schema'}: {schema}")

    def path_for(self, op: Operation, overrides: dict[str, Any] | None = None) -> str:
        """The operation's path with valid path parameters (or ``overrides``)."""
        path = op.path
        for param in op.params("path"):
            value = (overrides or {}).get(param["name"], self.valid(param["schema"]))
            path = path.replace("{" + param["name"] + "}", str(value))
        return path

    def body_for(self, op: Operation) -> Any:
        schema = op.body_schema()
        return None if schema is None else self.valid(schema)


@pytest.fixture(scope="session")
def schemas() -> Schemas:
    return Schemas(app_spec())
