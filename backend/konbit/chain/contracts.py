"""The one place that reads compiled artifacts (ABIs, bytecode) and the address book.

Everything else asks this module for a contract, an encoded call, a decoded revert or a
decoded event. Artifacts come from ``build/contracts/*.json`` (``brownie compile``); the
address book lives in ``<data_dir>/deployments/<chainId>-<genesis>.json`` (the first 16 hex
digits of the chain's genesis block hash: two chains with the same id keep two books, see
konbit.services.chains) and the ``deployment`` table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.grammar import parse as parse_abi_type
from eth_typing import HexStr
from eth_utils import (
    function_signature_to_4byte_selector,
    is_address,
    keccak,
    to_checksum_address,
)
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
    #: Hash of the genesis block of the chain instance; None: a book of before it was kept.
    genesis: str | None = None

    def address(self, name: str) -> str:
        try:
            return self.addresses[name]
        except KeyError:
            raise ArtifactError(
                f"{name} is not deployed on chain {self.chain_id}: run `konbit deploy`"
            ) from None

    @classmethod
    def path(cls, data_dir: Path, chain_id: int, genesis: str | None) -> Path:
        """The book of chain ``chain_id`` with that genesis (None: the one name it had
        before chains were told apart by genesis, ``<chainId>.json``)."""
        if genesis is None:
            return data_dir / "deployments" / f"{chain_id}.json"
        return data_dir / "deployments" / f"{chain_id}-{genesis_tag(genesis)}.json"

    @classmethod
    def load(cls, data_dir: Path, chain_id: int, genesis: str | None) -> AddressBook | None:
        path = cls.path(data_dir, chain_id, genesis)
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(
            chain_id=int(data["chainId"]),
            addresses=dict(data["contracts"]),
            deploy_block=int(data.get("deployBlock", 0)),
            code_hashes=dict(data.get("codeHashes", {})),
            init_hashes=dict(data.get("initHashes", {})),
            genesis=data.get("genesis", genesis),
        )

    def save(self, data_dir: Path) -> Path:
        path = self.path(data_dir, self.chain_id, self.genesis)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        body = {
            "chainId": self.chain_id,
            "genesis": self.genesis,
            "deployBlock": self.deploy_block,
            "contracts": self.addresses,
            "codeHashes": self.code_hashes,
            "initHashes": self.init_hashes,
        }
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        tmp.replace(path)
        return path


def genesis_tag(genesis: str) -> str:
    """The short name of a chain instance: the first 16 hex digits of its genesis hash."""
    return genesis.lower().removeprefix("0x")[:16]


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
        """(to, calldata) for ``name.function(*args)``, encoded once with eth_abi.

        Hex strings are accepted for ``bytesN``/``bytes`` arguments and checksummed or
        lower-case addresses for ``address`` ones, as web3 accepts them.
        """
        codec = function_codec(name, function, self._artifacts_dir)
        return _checksum(self.book.address(name)), codec.encode(*args)

    def encode_items_call(
        self, name: str, function: str, item_calldata: Sequence[str]
    ) -> tuple[str, str]:
        """(to, calldata) for ``name.function(items)`` from each item's own calldata
        (:meth:`FunctionCodec.encode_items`)."""
        codec = function_codec(name, function, self._artifacts_dir)
        return _checksum(self.book.address(name)), codec.encode_items(item_calldata)

    def call_named(self, name: str, function: str, *args: Any) -> dict[str, Any]:
        """A view call decoded by field name (a struct's components, or the outputs)."""
        to, data = self.encode_call(name, function, args)
        result = self.w3.eth.call({"to": to, "data": HexStr(data)})
        return function_codec(name, function, self._artifacts_dir).decode_named(
            "0x" + bytes(result).hex()
        )

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


@dataclass(frozen=True)
class DecodedEvent:
    """One decoded log: which contract and event, and its arguments (JSON-friendly)."""

    contract: str
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class _EventAbi:
    contract: str
    name: str
    #: (argument name, canonical type, indexed) in declaration order
    params: tuple[tuple[str, str, bool], ...]
    data_types: tuple[str, ...]
    data_names: tuple[str, ...]
    #: for each indexed parameter: (name, converter of the 32-byte topic)
    topic_params: tuple[tuple[str, Any], ...]


def _topic_converter(kind: str) -> Any:
    """How to read an indexed parameter from its topic (hex string of 32 bytes)."""
    if kind == "address":
        return lambda t: _checksum("0x" + t[-40:])
    if kind.startswith(("uint", "int")):
        if kind.startswith("int"):
            bits = int(kind[3:] or 256)
            return lambda t: _signed(int(t, 16), bits)
        return lambda t: int(t, 16)
    if kind == "bool":
        return lambda t: int(t, 16) != 0
    if kind.startswith("bytes") and kind != "bytes":
        size = int(kind[5:])
        return lambda t: "0x" + t[2 : 2 + 2 * size]
    # Dynamic types (string, bytes, arrays, tuples) are indexed as their keccak hash.
    return lambda t: t


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


@cache
def _checksum(address: str) -> str:
    return str(to_checksum_address(address))


class EventDecoder:
    """topic0 -> event ABI over the Konbit contracts; decodes logs without web3's pipeline.

    Indexed parameters are read from the topics, the rest with one ``eth_abi.decode`` of
    the data. Values are JSON-friendly: ints stay ints (exact, any size), addresses are
    checksummed strings, fixed bytes and hashes are 0x-hex, arrays are lists.
    """

    def __init__(self, artifacts: Iterable[Artifact]) -> None:
        self._by_topic: dict[str, _EventAbi] = {}
        for artifact in artifacts:
            for item in artifact.abi:
                if item.get("type") != "event" or item.get("anonymous"):
                    continue
                inputs = item["inputs"]
                types = [_type_of(p) for p in inputs]
                signature = f"{item['name']}({','.join(types)})"
                topic = "0x" + keccak(text=signature).hex()
                names = [p.get("name") or f"arg{i}" for i, p in enumerate(inputs)]
                indexed = [bool(p.get("indexed")) for p in inputs]
                self._by_topic.setdefault(
                    topic,
                    _EventAbi(
                        contract=artifact.name,
                        name=item["name"],
                        params=tuple(zip(names, types, indexed, strict=True)),
                        data_types=tuple(t for t, ix in zip(types, indexed, strict=True) if not ix),
                        data_names=tuple(n for n, ix in zip(names, indexed, strict=True) if not ix),
                        topic_params=tuple(
                            (n, _topic_converter(t))
                            for n, t, ix in zip(names, types, indexed, strict=True)
                            if ix
                        ),
                    ),
                )

    @property
    def topics(self) -> list[str]:
        return list(self._by_topic)

    def event_names(self) -> set[str]:
        return {e.name for e in self._by_topic.values()}

    def decode(self, topics: Sequence[str], data: str) -> DecodedEvent | None:
        """Decode one log from its topics and data (0x-hex, as JSON-RPC returns them).

        None for a log whose topic0 is not a known event (another contract's, anonymous).
        """
        if not topics:
            return None
        abi = self._by_topic.get(topics[0])
        if abi is None or len(topics) != len(abi.topic_params) + 1:
            return None
        args: dict[str, Any] = {}
        indexed: dict[str, Any] = {}
        for (name, convert), topic in zip(abi.topic_params, topics[1:], strict=True):
            indexed[name] = convert(topic)
        values: Sequence[Any] = ()
        if abi.data_types:
            values = abi_decode(list(abi.data_types), bytes.fromhex(data[2:]))
        plain = dict(zip(abi.data_names, values, strict=True))
        for name, kind, is_indexed in abi.params:
            value = indexed[name] if is_indexed else plain[name]
            if kind == "address" and not is_indexed:
                value = _checksum(value)  # eth_abi gives lower case; topics are checksummed
            args[name] = value if isinstance(value, int | str) else _jsonable(value)
        return DecodedEvent(abi.contract, abi.name, args)


@cache
def konbit_event_decoder(artifacts_dir: Path = ARTIFACTS_DIR) -> EventDecoder:
    """Events of the Konbit contracts (the ones the mirror follows)."""
    return EventDecoder(load_artifact(n, artifacts_dir) for n in KONBIT_CONTRACTS)


class FunctionCodec:
    """Calldata encoder and return decoder of one contract function, for batched eth_call."""

    def __init__(self, contract: str, function: str, artifacts_dir: Path = ARTIFACTS_DIR) -> None:
        abi = load_artifact(contract, artifacts_dir).abi
        item = next(
            (i for i in abi if i.get("type") == "function" and i.get("name") == function), None
        )
        if item is None:
            raise ArtifactError(f"{contract} has no function {function}")
        self.input_types = [_type_of(p) for p in item["inputs"]]
        self.output_types = [_type_of(p) for p in item["outputs"]]
        outputs = item["outputs"]
        # One struct returned (``getOrder``): its components are the names.
        if len(outputs) == 1 and outputs[0]["type"] == "tuple":
            self._unwrap = True
            self.output_names = [
                c.get("name") or f"arg{i}" for i, c in enumerate(outputs[0]["components"])
            ]
        else:
            self._unwrap = False
            self.output_names = [o.get("name") or f"arg{i}" for i, o in enumerate(outputs)]
        self._input_params = tuple(item["inputs"])
        selector = function_signature_to_4byte_selector(f"{function}({','.join(self.input_types)})")
        self._selector = "0x" + selector.hex()

    def encode(self, *args: Any) -> str:
        if len(args) != len(self.input_types):
            raise ValueError(f"expected {len(self.input_types)} arguments, got {len(args)}")
        values = [_abi_value(p, v) for p, v in zip(self._input_params, args, strict=True)]
        return self._selector + abi_encode(self.input_types, values).hex()

    def encode_items(self, item_calldata: Sequence[str]) -> str:
        """Calldata of this ``function(T[] items)`` from each item's calldata for a function
        of one ``T`` (``recordLots`` from ``recordLot``'s), with nothing encoded again: the
        elements of an array of a static ``T`` are their own encodings, one after another.
        """
        if len(self.input_types) != 1 or not self.input_types[0].endswith("[]"):
            raise ValueError(f"{self._selector} does not take one array")
        if parse_abi_type(self.input_types[0][:-2]).is_dynamic:
            raise ValueError(f"the elements of {self.input_types[0]} are not static")
        head = f"{32:064x}{len(item_calldata):064x}"
        return self._selector + head + "".join(data[10:] for data in item_calldata)

    def decode(self, result: str) -> tuple[Any, ...]:
        values = abi_decode(self.output_types, bytes.fromhex(result[2:]))
        return tuple(_jsonable(v) if isinstance(v, bytes | list | tuple) else v for v in values)

    def decode_named(self, result: str) -> dict[str, Any]:
        values = self.decode(result)
        if self._unwrap:
            values = tuple(values[0])
        return dict(zip(self.output_names, values, strict=True))


@cache
def function_codec(
    contract: str, function: str, artifacts_dir: Path = ARTIFACTS_DIR
) -> FunctionCodec:
    """One codec per function, built once per process."""
    return FunctionCodec(contract, function, artifacts_dir)


def _abi_value(param: Mapping[str, Any], value: Any) -> Any:
    """A Python value as eth_abi wants it for ``param`` (hex strings to bytes, structs)."""
    kind: str = param["type"]
    if kind.endswith("]"):
        inner = {**param, "type": kind[: kind.rindex("[")]}
        return [_abi_value(inner, v) for v in value]
    if kind == "tuple":
        components = param["components"]
        if isinstance(value, Mapping):
            value = [value[c["name"]] for c in components]
        return tuple(_abi_value(c, v) for c, v in zip(components, value, strict=True))
    if kind.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value[2:] if value.startswith("0x") else value)
    if kind == "address" and isinstance(value, str):
        if not is_address(value):
            raise ValueError(f"not an address: {value!r}")
        return value
    return value
