"""The one settings object.

Precedence, highest first: keyword overrides, ``KONBIT_*`` environment variables, a
``.env`` file, the defaults below. pydantic-settings is not used because eth-brownie pins
python-dotenv 0.16, which pydantic-settings refuses; this module does the same job.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

ENV_PREFIX = "KONBIT_"
#: KONBIT_ variables read outside the settings (the Anvil binary, the outbox's crash hook
#: for tests, the tests' PostgreSQL server): not typos.
READ_ELSEWHERE = frozenset(
    {"KONBIT_ANVIL_BIN", "KONBIT_OUTBOX_CRASH_AT", "KONBIT_TEST_POSTGRES_URL"}
)
#: Names people reach for that are spelled otherwise here.
LIKELY_MEANT = {
    "chain_url": "rpc_url",
    "node_url": "rpc_url",
    "eth_rpc_url": "rpc_url",
    "db_url": "database_url",
}
#: Chain ids of development nodes (Anvil, Ganache, Hardhat): no confirmations needed.
LOCAL_CHAIN_IDS = frozenset({31337, 1337})


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


class Settings(BaseModel):
    """Runtime configuration of a Konbit backend."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(
        default=Path(".konbit"), description="Local state: chain, database, vault, deployments."
    )
    rpc_url: str | None = Field(
        default=None, description="JSON-RPC URL of an EVM node; unset: the managed local Anvil."
    )
    chain_host: str = Field(default="127.0.0.1", description="Host of the managed local Anvil.")
    chain_port: int = Field(default=8545, ge=0, le=65535, description="Port of the managed Anvil.")
    chain_id: int = Field(default=31337, ge=1, description="Chain id of the managed Anvil.")
    chain_state_interval: int = Field(
        default=1,
        ge=1,
        le=3600,
        description="Seconds between the managed Anvil's state dumps: what a kill -9 of the "
        "node can lose (the outbox sends it again).",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; unset: SQLite at <data_dir>/konbit.db."
    )
    host: str = Field(default="127.0.0.1", description="Host the HTTP API binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the HTTP API binds to.")
    vault_master_key_file: Path | None = Field(
        default=None, description="Vault master key file; unset: <data_dir>/vault/master.key."
    )
    vault_master_key: SecretStr | None = Field(
        default=None, description="Vault master key (base64), instead of the file."
    )
    gas_topup_wei: int = Field(
        default=50_000_000_000_000_000,
        ge=0,
        description="Native coin the operator sends a custodial account whose gas runs low.",
    )
    log_level: str = Field(
        default="INFO",
        pattern="(?i)^(debug|info|warning|error|critical)$",
        description="Logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL (any case).",
    )
    rate_limit: str = Field(
        default="1200/minute",
        description="Requests per API key (a `limits` rule such as 1200/minute); 429 beyond.",
    )
    gas_budget_wei_per_day: int = Field(
        default=10**18,
        ge=0,
        description="Native coin the operator sponsors per organisation per 24 h (0: no cap).",
    )
    request_threads: int = Field(
        default=2,
        ge=1,
        le=200,
        description="Threads per web worker for the SMS webhooks and the pages (the API's "
        "reads and writes have their own). Few: the work is mostly Python, and more threads "
        "only queue for the interpreter lock, out of order (measured: 2 answered SMS faster "
        "than 4 or 8).",
    )
    read_threads: int = Field(
        default=8,
        ge=1,
        le=200,
        description="Threads per web worker for the API's reads (its plain endpoints). More "
        "than for other requests: under a write load they share the interpreter with the "
        "event loop, which takes the writes, and their share grows with their number "
        "(bench/api_load.py, 25 readers and 25 writers: reads p99 440 ms with 2, 224 ms "
        "with 8).",
    )
    reads_on_loop: bool | None = Field(
        default=None,
        description="Run the API's short reads of the database (pages and records by id) on "
        "each web worker's event loop instead of in its read threads: cheaper than the trip "
        "to a thread and back, as long as a read never waits. Unset: on SQLite (a local "
        "file), not on PostgreSQL (a round trip the loop would wait for).",
    )
    write_threads: int = Field(
        default=2,
        ge=1,
        le=200,
        description="Threads per web worker for API writes, apart from the others so that "
        "reads never queue behind writes waiting on the node or the database.",
    )
    web_workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Web server processes `konbit run` starts on its port (0: one per core, "
        "at most 4). Each counts the rate limit of the requests it serves on its own.",
    )
    max_body_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description="Request bodies above this size are refused with 413 before they are read.",
    )
    confirmations: int | None = Field(
        default=None,
        ge=0,
        description="Blocks the mirror stays behind the head; unset: 0 on a local chain "
        "(chain id 31337 or 1337), 12 elsewhere.",
    )
    mirror_chunk_blocks: int = Field(
        default=2000,
        ge=1,
        description="Blocks per eth_getLogs call the mirror starts with (then adapts).",
    )
    mirror_poll_seconds: float = Field(
        default=0.2, gt=0, description="Pause of the mirror's follow loop once at the head."
    )
    mirror_header_window: int = Field(
        default=256,
        ge=2,
        description="Block headers the mirror keeps to find a fork point after a reorg.",
    )
    # --- farmers' gateway: SMS, USSD, QR labels (konbit.sms, konbit.labels) -------------
    public_base_url: str | None = Field(
        default=None,
        description="The URL the world reaches this server at (labels' GS1 Digital Link "
        "URIs, Twilio's signature checks behind a proxy); unset: http://<host>:<port>.",
    )
    gtins: str | None = Field(
        default=None,
        description="GTIN per crop code for lot labels, e.g. '1:09506000134352,2:...'; "
        "check digits verified. A crop without one gets the fallback path /l/<id>.",
    )
    sms_provider: str = Field(
        default="store",
        pattern="^(store|console|twilio|africastalking)$",
        description="Outbound SMS: store (kept in the table only), console, twilio or "
        "africastalking.",
    )
    sms_default_region: str = Field(
        default="HT", min_length=2, max_length=2, description="Region of numbers without +."
    )
    sms_notices: bool = Field(
        default=True, description="Send farmers notices of mirrored events (lots, payouts)."
    )
    sms_write_wait_seconds: float = Field(
        default=8.0,
        ge=0,
        description="How long an SMS/USSD write waits for the chain before replying 'pending'.",
    )
    sms_max_attempts: int = Field(default=8, ge=1, description="Outbound SMS send attempts.")
    ussd_resume_seconds: int = Field(
        default=300, ge=0, description="A dropped USSD session can be resumed this long."
    )
    twilio_account_sid: str | None = Field(default=None, description="Twilio account SID.")
    twilio_auth_token: SecretStr | None = Field(
        default=None, description="Twilio auth token: signs webhooks, authenticates sends."
    )
    twilio_from: str | None = Field(
        default=None, description="Twilio sender: a phone number or a Messaging Service SID."
    )
    at_username: str | None = Field(default=None, description="Africa's Talking username.")
    at_api_key: SecretStr | None = Field(default=None, description="Africa's Talking API key.")
    at_sender_id: str | None = Field(
        default=None, description="Africa's Talking sender id or short code (optional)."
    )
    at_api_url: str = Field(
        default="https://api.africastalking.com/version1/messaging",
        description="Africa's Talking SMS endpoint (the sandbox has its own).",
    )
    at_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Path secret of the Africa's Talking callbacks (/sms/africastalking/"
        "<secret>); unset: those callbacks answer 404.",
    )
    at_allowed_sources: str | None = Field(
        default=None,
        description="Comma-separated addresses or networks allowed to call the Africa's "
        "Talking callbacks; unset: any.",
    )

    @property
    def managed_chain(self) -> bool:
        """True when the backend runs its own local Anvil rather than a given node."""
        return self.rpc_url is None

    @property
    def effective_rpc_url(self) -> str:
        return self.rpc_url or f"http://{self.chain_host}:{self.chain_port}"

    @property
    def shown_rpc_url(self) -> str:
        """The node's URL for messages and logs: scheme, host and port only. Providers put
        API keys in the path, the query or the user part (``/v2/<key>``)."""
        parts = urlsplit(self.effective_rpc_url)
        shown = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return shown + ("/..." if parts.path.strip("/") or parts.query else "")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'konbit.db'}"

    @property
    def runs_reads_on_loop(self) -> bool:
        """``reads_on_loop``, or when unset: whether the database is SQLite."""
        if self.reads_on_loop is not None:
            return self.reads_on_loop
        return self.effective_database_url.startswith("sqlite")

    @property
    def effective_vault_master_key_file(self) -> Path:
        return self.vault_master_key_file or self.data_dir / "vault" / "master.key"

    def effective_confirmations(self, chain_id: int) -> int:
        """Confirmation depth of the mirror on ``chain_id``."""
        if self.confirmations is not None:
            return self.confirmations
        return 0 if chain_id in LOCAL_CHAIN_IDS else 12

    def private_data_dir(self) -> Path:
        """The data directory, created (or narrowed to) 0700: it holds the database, the
        vault's keyring and the chain state, none of them for other users' eyes."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.data_dir.stat().st_mode & 0o077:
            self.data_dir.chmod(0o700)
        return self.data_dir

    @property
    def effective_public_base_url(self) -> str:
        """The public base URL without a trailing slash."""
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def chain_dir(self) -> Path:
        return self.data_dir / "chain"

    @classmethod
    def load(
        cls,
        *,
        env_file: Path | None = Path(".env"),
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from defaults, ``.env``, the environment and ``overrides``."""
        values: dict[str, Any] = {}
        if env_file is not None and env_file.is_file():
            values.update(_prefixed(dotenv_values(env_file)))
        values.update(_prefixed(os.environ if environ is None else environ))
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors()
            )
            raise SettingsError(f"invalid settings: {problems}") from None


def unknown_variables(
    *, env_file: Path | None = Path(".env"), environ: Mapping[str, str] | None = None
) -> list[str]:
    """One warning per ``KONBIT_`` variable that is no setting, with the one likely meant.

    Such a variable is ignored: without a word, ``KONBIT_CHAIN_URL=...`` would leave Konbit
    on its own local chain while the person believes it uses theirs."""
    names: set[str] = set()
    if env_file is not None and env_file.is_file():
        names |= set(dotenv_values(env_file))
    names |= set(os.environ if environ is None else environ)
    known = set(Settings.model_fields)
    warnings = []
    for key in sorted(names):
        if not key.upper().startswith(ENV_PREFIX) or key.upper() in READ_ELSEWHERE:
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name in known:
            continue
        guess = LIKELY_MEANT.get(name) or next(
            iter(difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)), None
        )
        hint = f"; did you mean {ENV_PREFIX}{guess.upper()}?" if guess else ""
        warnings.append(f"{key} is not a Konbit setting and is ignored{hint}")
    return warnings


def _prefixed(source: Mapping[str, str | None]) -> dict[str, str]:
    known = set(Settings.model_fields)
    out: dict[str, str] = {}
    for key, value in source.items():
        if value is None or not key.upper().startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name in known and value != "":
            out[name] = value
    return out
