"""The one place that reads compiled artifacts (ABIs, bytecode) and the address book.

Everything else asks this module for a contract, an encoded call, a decoded revert or a
decoded event. Artifacts come from ``build/contracts/*.json`` (``brownie compile``); the
address book lives in ``<data_dir>/deployments/<chainId>.json`` and the ``deployment``
table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract

from konbit.paths import ARTIFACTS_DIR

#: The Konbit contracts, in deploy order.
KONBIT_CONTRACTS: tuple[str, ...] = (
    "ClusterRegistry",
    "Traceability",
    "SaleEscrow",
    "LogisticsMarket",
    "FinanceMarket",
)
#: Deployed only on local chains.
LOCAL_ONLY_CONTRACTS: tuple[str, ...] = ("TestStablecoin",)


class ArtifactError(RuntimeError):
    """A compiled artifact or an address is missing."""


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str

    @property
    def runtime_code_hash(self) -> str:
        return "0x" + keccak(hexstr=self.deployed_bytecode).hex()


@cache
def load_artifact(name: str, artifacts_dir: Path = ARTIFACTS_DIR) -> Artifact:
    path = artifacts_dir / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"no artifact {path}: run `make compile`") from None
    return Artifact(
        name=name,
        abi=data["abi"],
        bytecode=_hex(data["bytecode"]),
        deployed_bytecode=_hex(data["deployedBytecode"]),
    )


def _hex(value: str) -> str:
    return value if value.startswith("0x") else "0x" + value


def _type_of(param: Mapping[str, Any]) -> str:
    """Canonical ABI type, expanding tuples (structs)."""
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_type_of(c) for c in param["components"])
        return f"({inner}){kind[5:]}"
    return kind


def _named(params: Sequence[Mapping[str, Any]], values: Sequence[Any]) -> dict[str, Any]:
    return {
        (p.get("name") or f"arg{i}"): v for i, (p, v) in enumerate(zip(params, values, strict=True))
    }


@dataclass(frozen=True)
class DecodedError:
    """A revert reason: a custom error with its arguments, Error(string) or Panic(uint256)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{self.name}({inner})"


@dataclass(frozen=True)
class _AbiItem:
    name: str
    inputs: tuple[Mapping[str, Any], ...]
    types: tuple[str, ...]


_BUILTIN_ERRORS = {
    function_signature_to_4byte_selector("Error(string)"): _AbiItem(
        "Error", ({"name": "message", "type": "string"},), ("string",)
    ),
    function_signature_to_4byte_selector("Panic(uint256)"): _AbiItem(
        "Panic", ({"name": "code", "type": "uint256"},), ("uint256",)
    ),
}


class ErrorDecoder:
    """Turns revert data into the custom error's name and arguments, over all artifacts."""

    def __init__(self, artifacts: Iterable[Artifact]) -> None:
        self._by_selector: dict[bytes, _AbiItem] = dict(_BUILTIN_ERRORS)
        for artifact in artifacts:
            for item in artifact.abi:
                if item.get("type") != "error":
                    continue
                types = tuple(_type_of(p) for p in item["inputs"])
                selector = function_signature_to_4byte_selector(
                    f"{item['name']}({','.join(types)})"
                )
                self._by_selector[selector] = _AbiItem(item["name"], tuple(item["inputs"]), types)

    def decode(self, data: bytes | str | None) -> DecodedError | None:
        if data is None:
            return None
        raw = (
            bytes.fromhex(data[2:] if data.startswith("0x") else data)
            if isinstance(data, str)
            else data
        )
        if len(raw) < 4:
            return DecodedError("EmptyRevert") if not raw else None
        item = self._by_selector.get(raw[:4])
        if item is None:
            return DecodedError("UnknownError", {"selector": "0x" + raw[:4].hex()})
        values = abi_decode(list(item.types), raw[4:])
        return DecodedError(item.name, _named(item.inputs, [_jsonable(v) for v in values]))


def _jsonable(value: Any) -> Any:
    """Decoded ABI values as JSON-friendly Python: bytes as 0x-hex, tuples as lists."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class AddressBook:
    """Where each contract lives on one chain, and from which block to read its events.

    ``init_hashes`` (keccak of creation code with constructor arguments) and
    ``code_hashes`` (keccak of the runtime code at the address) let ``konbit deploy`` skip a
    contract that is already there, unchanged.
    """

    chain_id: int
    addresses: dict[str, str]
    deploy_block: int = 0
    code_hashes: dict[str, str] = field(default_factory=dict)
    init_hashes: dict[str, str] = field(default_factory=dict)

    def address(self, name: str) -> str:
        try:
            return self.addresses[name]
        except KeyError:
            raise ArtifactError(
                f"{name} is not deployed on chain {self.chain_id}: run `konbit deploy`"
            ) from None

    @classmethod
    def path(cls, data_dir: Path, chain_id: int) -> Path:
        return data_dir / "deployments" / f"{chain_id}.json"

    @classmethod
    def load(cls, data_dir: Path, chain_id: int) -> AddressBook | None:
        path = cls.path(data_dir, chain_id)
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(
            chain_id=int(data["chainId"]),
            addresses=dict(data["contracts"]),
            deploy_block=int(data.get("deployBlock", 0)),
            code_hashes=dict(data.get("codeHashes", {})),
            init_hashes=dict(data.get("initHashes", {})),
        )

    def save(self, data_dir: Path) -> Path:
        path = self.path(data_dir, self.chain_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        body = {
            "chainId": self.chain_id,
            "deployBlock": self.deploy_block,
            "contracts": self.addresses,
            "codeHashes": self.code_hashes,
            "initHashes": self.init_hashes,
        }
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        tmp.replace(path)
        return path


class KonbitContracts:
    """The deployed Konbit contracts on one chain, as web3 contract objects."""

    def __init__(self, w3: Web3, book: AddressBook, artifacts_dir: Path = ARTIFACTS_DIR) -> None:
        self.w3 = w3
        self.book = book
        self._artifacts_dir = artifacts_dir
        self._cache: dict[str, Contract] = {}
        names = [n for n in (*KONBIT_CONTRACTS, *LOCAL_ONLY_CONTRACTS) if n in book.addresses]
        self.errors = ErrorDecoder(load_artifact(n, artifacts_dir) for n in names)

    def contract(self, name: str) -> Contract:
        if name not in self._cache:
            artifact = load_artifact(name, self._artifacts_dir)
            self._cache[name] = self.w3.eth.contract(
                address=to_checksum_address(self.book.address(name)), abi=artifact.abi
            )
        return self._cache[name]

    def encode_call(self, name: str, function: str, args: Sequence[Any]) -> tuple[str, str]:
        """(to, calldata) for ``name.function(*args)``."""
        contract = self.contract(name)
        data = contract.encode_abi(function, args=list(args))
        return contract.address, data

    @property
    def registry(self) -> Contract:
        return self.contract("ClusterRegistry")

    @property
    def traceability(self) -> Contract:
        return self.contract("Traceability")

    @property
    def escrow(self) -> Contract:
        return self.contract("SaleEscrow")

    @property
    def logistics(self) -> Contract:
        return self.contract("LogisticsMarket")

    @property
    def finance(self) -> Contract:
        return self.contract("FinanceMarket")

    @property
    def stablecoin(self) -> Contract:
        return self.contract("TestStablecoin")


def default_error_decoder(artifacts_dir: Path = ARTIFACTS_DIR) -> ErrorDecoder:
    """Errors of every compiled Konbit contract (whatever is deployed)."""
    names = (*KONBIT_CONTRACTS, *LOCAL_ONLY_CONTRACTS)
    found = [n for n in names if (artifacts_dir / f"{n}.json").is_file()]
    return ErrorDecoder(load_artifact(n, artifacts_dir) for n in found)
