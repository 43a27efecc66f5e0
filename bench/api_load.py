"""HTTP API under load against raw pre-signed ``eth_sendRawTransaction``, same Anvil, same run.

    .venv/bin/python bench/api_load.py [--clients 50] [--readers 25] [--seconds 20] [--check]

Starts the real server, ``konbit run`` (its own managed Anvil, the contracts deployed, the
API with the outbox worker and the mirror), on SQLite in a fresh temporary data directory
on free ports, and stops everything it started at the end. Over HTTP it onboards a
cooperative, issues its key, enrols ``--farmers`` farmers and records ``--seed-lots`` lots
(all ``?wait=true``).

Load: ``--clients`` concurrent clients (one aiohttp session and connection each, one
asyncio loop) for ``--seconds``: half (or ``--readers`` of them) read
(``GET /cooperative/lots?limit=50``, ``GET /cooperative/farmers``, ``GET /trace/lots/{id}``
in turn), the others write (``POST /cooperative/lots`` for the enrolled farmers, answered
202 without waiting). ``--readers 0`` finds the write ceiling.
Prints status codes (and a few bodies of non-2xx answers), req/s, p50 and p99 latency
per kind and per endpoint, and the CPU the server, Anvil and this client used. Then waits
for the outbox to drain and the mirror to catch up, and checks that every write was
mined and mirrored.

Lone writes, once the outbox has drained (``--lone-writes``, 20): one at a time with
``?wait=true``, the wait of an agent recording a lot (mined and mirrored).

The mix's ceiling, after them (``--ceiling-seconds``, 10): the same readers read as in the
load while the writers ask a path with no route instead of writing. Those writers' answers
per second are the most writes per second this mix could give on this machine if a write
cost no more than a 404 (no authentication, body, database, simulation, signing, mining or
mirroring): a bound on the write target that no work on the write path can pass.

The server's floor, after it (``--floor-seconds``, 5): the same
clients ask a path with no route, the cheapest answer the server gives (middleware,
routing, a 404 problem+json; no handler, database or node). It separates what the web
framework costs per answer from what a write's own work costs.

Raw, last (see ``raw_baseline``): ``--raw-txs`` 1-wei transfers signed beforehand with
eth-account, sent to the server's Anvil by the same number of clients in the same way,
each from its own account of Anvil's mnemonic (past the ten Anvil funds, funded alike with
``anvil_setBalance``): tx/s accepted, and mined. Writes/s (accepted, 202) is printed as a
ratio of raw tx/s (accepted).

Targets: reads p99 < 250 ms, writes >= 0.5x raw. Exit code 0 whatever the figures;
with ``--check``, 1 when a target fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from konbit.chain.local import free_port

MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNTS = 10  # Anvil funds the first ten accounts of the mnemonic
DEV_BALANCE = 10_000 * 10**18  # what it gives each
READ_P99_TARGET_MS = 250.0
WRITE_RATIO_TARGET = 0.5
EVIDENCE = "0x" + "ab" * 32
PENDING = ("queued", "signed", "sent")
STALL_SECONDS = 3.0  # no new block for this long with transfers unmined: automine stalled
AUTOMINE_SECONDS = 15.0  # after the last send, automine gets this long before evm_mine helps
JSON = {"content-type": "application/json"}
MAX_ERRORS = 5  # bodies of non-2xx answers printed

# ---- the server under test ---------------------------------------------------------------


class Server:
    """``konbit run`` in its own process group, on a fresh data directory and free ports."""

    def __init__(self, data_dir: Path, settings: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.chain_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.chain_url = f"http://127.0.0.1:{self.chain_port}"
        self.log_path = data_dir / "server.log"
        # Only our settings: a developer's KONBIT_DATABASE_URL or .env must not leak in.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KONBIT_")}
        self.env |= {
            "KONBIT_DATA_DIR": str(data_dir),
            "KONBIT_PORT": str(self.port),
            "KONBIT_CHAIN_PORT": str(self.chain_port),
            # All the load comes through one key: lift the per-key limit and the gas budget
            # (a load test, not abuse), so that they do not set the pace.
            "KONBIT_RATE_LIMIT": "1000000/minute",
            "KONBIT_GAS_BUDGET_WEI_PER_DAY": "0",
            **(settings or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def konbit(self, *args: str) -> list[str]:
        code = "import sys; from konbit.cli import main; sys.exit(main())"
        return [sys.executable, "-c", code, *args]

    def start(self, timeout: float) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.konbit("run"),
                cwd=self.data_dir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: Anvil and helpers follow it
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"konbit run exited ({self.process.returncode}):\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"no /healthz within {timeout:.0f}s:\n{self.tail()}")

    def operator_key(self) -> str:
        done = subprocess.run(
            self.konbit("apikey", "--label", "bench"),
            cwd=self.data_dir,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        """SIGTERM ``konbit run`` (it stops its Anvil, which saves state), then its group."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        for sig, pause in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
            if not self.group():
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            deadline = time.monotonic() + pause
            while self.group() and time.monotonic() < deadline:
                time.sleep(0.1)
        if proc.poll() is None:
            proc.wait(timeout=5)

    def group(self) -> dict[int, tuple[str, float]]:
        """pid -> (command name, CPU seconds) of every live process in the server's group."""
        if self.process is None:
            return {}
        found = {}
        tick = os.sysconf("SC_CLK_TCK")
        groups = {self.process.pid}
        with contextlib.suppress(OSError, ValueError):
            groups.add(int((self.data_dir / "chain" / "anvil.pid").read_text().strip()))
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            # fields[0] is the state (3rd field of stat): pgrp is the 5th, utime the 14th.
            # The managed Anvil runs in a session of its own (it outlives a crash of the
            # server): its group is its pid, in data_dir/chain/anvil.pid.
            if fields[0] != "Z" and int(fields[2]) in groups:
                found[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / tick)
        return found

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far per part: server (Python), anvil (node wrapper included)."""
        out: dict[str, float] = defaultdict(float)
        for name, seconds in self.group().values():
            out["anvil" if name in ("anvil", "node") else "server"] += seconds
        return out

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


# ---- set-up over HTTP --------------------------------------------------------------------


def ok(reply: httpx.Response, *codes: int) -> Any:
    if reply.status_code not in (codes or (200,)):
        raise RuntimeError(
            f"{reply.request.method} {reply.request.url.path}: {reply.status_code} {reply.text}"
        )
    return reply.json()


@dataclass
class Cooperative:
    key: str
    address: str
    farmers: list[str]
    lots: list[int]


def set_up(url: str, operator_key: str, farmers: int, lots: int) -> Cooperative:
    wait = {"wait": "true"}
    with httpx.Client(base_url=url, timeout=120) as http:
        op = {"Authorization": f"Bearer {operator_key}"}
        body = {"name": "Kowoperativ Bench", "role": "cooperative"}
        org = ok(http.post("/operator/organisations", params=wait, json=body, headers=op))
        address = org["organisation"]["address"]
        key = ok(
            http.post(
                f"/operator/organisations/{address}/keys", json={"label": "bench"}, headers=op
            ),
            201,
        )["key"]
        coop = {"Authorization": f"Bearer {key}"}
        enrolled = []
        for i in range(farmers):
            farmer = {
                "name": f"Farmer {i}",
                "phone": f"+5093700{i:04d}",
                "language": "ht",
                "plot_geohash": "d7ns5qzk",
            }
            reply = http.post("/cooperative/farmers", params=wait, json=farmer, headers=coop)
            enrolled.append(ok(reply)["farmer"]["address"])
        batch = {"lots": [lot_body(enrolled[i % farmers], i) for i in range(lots)]}
        events = ok(http.post("/cooperative/lots/batch", params=wait, json=batch, headers=coop))[
            "events"
        ]
        ids = [int(e["args"]["lotId"]) for e in events if e["event"] == "LotRecorded"]
    return Cooperative(key, address, enrolled, ids)


def lot_body(farmer: str, i: int) -> dict[str, Any]:
    return {
        "farmer": farmer,
        "crop": 1 + i % 3,
        "grams": 10_000 + (i * 7919) % 90_000,
        "grade": 1 + i % 4,
        "harvest_time": int(time.time()) - 86_400,
        "plot_geohash": "d7ns5qzk",
        "evidence_hash": EVIDENCE,
    }


def status(url: str, operator_key: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {operator_key}"}
    body: dict[str, Any] = ok(httpx.get(url + "/operator/status", headers=headers, timeout=30))
    return body


def wait_for_mirror(url: str, operator_key: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while status(url, operator_key)["mirror"]["lag_blocks"] != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the mirror did not reach the head within {timeout:.0f}s")
        time.sleep(0.2)


# ---- load --------------------------------------------------------------------------------


@dataclass
class Stats:
    """Latencies (seconds) per endpoint label, status codes per kind, a few error bodies."""

    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    codes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    errors: list[str] = field(default_factory=list)

    def record(self, kind: str, label: str, code: str, seconds: float) -> None:
        self.codes[kind][code] += 1
        self.latency[kind].append(seconds)
        self.latency[f"{kind}:{label}"].append(seconds)


#: (kind, label, method, path, body) of the next request a client makes.
Request = tuple[str, str, str, str, bytes | None]


def reads(coop: Cooperative, offset: int) -> Iterator[Request]:
    i = offset
    while True:
        yield ("read", "GET /cooperative/lots", "GET", "/cooperative/lots?limit=50", None)
        yield ("read", "GET /cooperative/farmers", "GET", "/cooperative/farmers", None)
        lot = coop.lots[i % len(coop.lots)]
        yield ("read", "GET /trace/lots/{id}", "GET", f"/trace/lots/{lot}", None)
        i += 1


def writes(coop: Cooperative, offset: int) -> Iterator[Request]:
    i = offset
    while True:
        body = json.dumps(lot_body(coop.farmers[i % len(coop.farmers)], i)).encode()
        yield ("write", "POST /cooperative/lots", "POST", "/cooperative/lots", body)
        i += 1


def floor(coop: Cooperative, offset: int) -> Iterator[Request]:
    """The cheapest answer the server gives: a path with no route (404 problem+json)."""
    while True:
        yield ("floor", "GET /no-such-path (404)", "GET", "/no-such-path", None)


def null_writes(coop: Cooperative, offset: int) -> Iterator[Request]:
    """The ceiling's writers: the floor's request in the writers' place (kind "null")."""
    while True:
        yield ("null", "GET /no-such-path (404)", "GET", "/no-such-path", None)


def http_client(base_url: str = "", key: str | None = None) -> aiohttp.ClientSession:
    """One connection, kept alive, no proxy lookups.

    aiohttp, not httpx: on this machine httpx's async client costs several times the CPU per
    request, and a load generator that saturates before the server measures itself.
    """
    headers = {**JSON, **({"Authorization": f"Bearer {key}"} if key else {})}
    return aiohttp.ClientSession(
        base_url=base_url or None,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=60),
        connector=aiohttp.TCPConnector(limit=1),
        trust_env=False,
    )


async def client(
    http: aiohttp.ClientSession, requests: Iterator[Request], until: float, stats: Stats
) -> None:
    clock = time.perf_counter
    while clock() < until:
        kind, label, method, path, body = next(requests)
        start = clock()
        text = "(no answer)"
        try:
            async with http.request(method, path, data=body) as reply:
                content = await reply.read()
            code = str(reply.status)
            text = content[:300].decode(errors="replace")
        except aiohttp.ClientError as exc:
            code = type(exc).__name__
        stats.record(kind, label, code, clock() - start)
        if code[0] != "2" and len(stats.errors) < MAX_ERRORS:
            stats.errors.append(f"{label} -> {code}: {text}")


async def api_load(
    url: str,
    coop: Cooperative,
    clients: int,
    readers: int,
    seconds: float,
    *,
    only: Callable[[Cooperative, int], Iterator[Request]] | None = None,
    writing: Callable[[Cooperative, int], Iterator[Request]] | None = None,
) -> tuple[Stats, float]:
    """Every client connected first, then all start at once; ends when the last returns.
    The first ``readers`` clients read, the others write, or make ``writing``'s requests
    (or all make ``only``'s requests)."""
    stats = Stats()
    https = [http_client(url, coop.key) for _ in range(clients)]
    try:
        await asyncio.gather(*(ping(h, "/healthz") for h in https))
        start = time.perf_counter()
        await asyncio.gather(
            *(
                client(
                    h,
                    (only or (reads if i < readers else writing or writes))(coop, i * 7),
                    start + seconds,
                    stats,
                )
                for i, h in enumerate(https)
            )
        )
        return stats, time.perf_counter() - start
    finally:
        await asyncio.gather(*(h.close() for h in https))


async def ping(http: aiohttp.ClientSession, path: str, body: bytes | None = None) -> None:
    """Open the session's connection before the clock starts."""
    method = "POST" if body is not None else "GET"
    async with http.request(method, path, data=body) as reply:
        await reply.read()


# ---- raw baseline ------------------------------------------------------------------------


def rpc(url: str, method: str, *params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    reply = httpx.post(url, json=body, timeout=30).json()
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


@functools.cache
def dev_accounts(count: int) -> list[LocalAccount]:
    """The first ``count`` accounts of Anvil's mnemonic (Anvil funds the first ten)."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(count)
    ]


def presign(chain_url: str, senders: int, n: int) -> tuple[list[list[bytes]], list[str]]:
    """``n`` pre-signed 1-wei self-transfers as JSON-RPC request bodies, one list per
    sender in nonce order; and the hash of each sender's last transaction."""
    accounts = dev_accounts(senders)
    for acct in accounts[DEV_ACCOUNTS:]:  # beyond the ten Anvil funds: fund like Anvil does
        rpc(chain_url, "anvil_setBalance", acct.address, hex(DEV_BALANCE))
    chain_id = int(rpc(chain_url, "eth_chainId"), 16)
    bodies: list[list[bytes]] = [[] for _ in accounts]
    last = []
    for j, acct in enumerate(accounts):
        nonce = int(rpc(chain_url, "eth_getTransactionCount", acct.address, "pending"), 16)
        for k in range(n // senders + (j < n % senders)):
            signed = acct.sign_transaction(
                {
                    "chainId": chain_id,
                    "nonce": nonce + k,
                    "to": acct.address,
                    "value": 1,
                    "gas": 21_000,
                    "maxFeePerGas": 100 * 10**9,
                    "maxPriorityFeePerGas": 10**9,
                    "type": 2,
                }
            )
            raw = b"0x" + bytes(signed.raw_transaction).hex().encode()
            bodies[j].append(
                b'{"jsonrpc":"2.0","id":%d,"method":"eth_sendRawTransaction","params":["%s"]}'
                % (k, raw)
            )
        if bodies[j]:
            last.append("0x" + bytes(signed.hash).hex())
    return bodies, last


async def raw_sender(
    http: aiohttp.ClientSession, url: str, bodies: list[bytes], stats: Stats
) -> None:
    """One sender's transactions, in nonce order, one at a time."""
    clock = time.perf_counter
    for body in bodies:
        start = clock()
        async with http.post(url, data=body) as reply:
            answer = json.loads(await reply.read())
            status_code = reply.status
        code = "error" if "error" in answer else str(status_code)
        stats.record("raw", "eth_sendRawTransaction", code, clock() - start)
        if code == "error" and len(stats.errors) < MAX_ERRORS:
            stats.errors.append(f"eth_sendRawTransaction -> {answer['error']}")


@dataclass
class Raw:
    stats: Stats
    sent: float  # seconds from the first send to the last answer
    mined: float | None  # seconds until every transfer was mined; None if automine stalled
    total: float  # seconds from the first send until every transfer was mined, nudged or not
    nudged: int  # evm_mine calls it took to mine what a stalled automine left
    client_cpu: float  # CPU seconds this process used from the first send on (no signing)
    dropped: int = 0  # senders whose last transfer the node dropped (never mined)


async def raw_baseline(chain_url: str, bodies: list[list[bytes]], last: list[str]) -> Raw:
    """Send the pre-signed transfers, one client per sender, each in nonce order; then wait
    until every sender's ``last`` transfer is mined.

    Anvil 1.7's automine can stop for good after bursts of concurrent sends, leaving ready
    transactions in its pool (seen here with 50 concurrent senders after a few thousand
    transfers; the node still answers, and ``evm_mine`` still mines), or crawl through its
    pool a few transfers a second (2,000 took over four minutes). When no block comes for
    ``STALL_SECONDS``, or automine has not finished ``AUTOMINE_SECONDS`` after the last
    send, the rest is mined with ``evm_mine`` so that the run can finish, and that is
    reported.
    """
    stats = Stats()
    https = [http_client() for _ in bodies]
    chain_id = b'{"jsonrpc":"2.0","id":0,"method":"eth_chainId","params":[]}'
    try:
        await asyncio.gather(*(ping(h, chain_url, chain_id) for h in https))
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(
            *(raw_sender(h, chain_url, mine, stats) for h, mine in zip(https, bodies, strict=True))
        )
        sent = time.perf_counter() - start
    finally:
        await asyncio.gather(*(h.close() for h in https))
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionReceipt", "params": [h]}
        for i, h in enumerate(last)
    ]
    mined: float | None = None
    nudged, dropped, head, moved = 0, 0, None, time.monotonic()
    automine_until = time.monotonic() + AUTOMINE_SECONDS
    async with http_client() as http:
        while True:
            async with http.post(chain_url, json=batch) as reply:
                receipts = await reply.json()
            if all(r.get("result") for r in receipts):
                break
            block = rpc(chain_url, "eth_blockNumber")
            if block != head:
                head, moved = block, time.monotonic()
            if time.monotonic() - moved > STALL_SECONDS or time.monotonic() > automine_until:
                pool = rpc(chain_url, "txpool_status")
                if nudged and int(pool["pending"], 16) + int(pool["queued"], 16) == 0:
                    # Nothing left to mine: the node dropped what is missing (seen after
                    # long runs); report it rather than mine empty blocks for ever.
                    dropped = sum(not r.get("result") for r in receipts)
                    break
                if not nudged:
                    # Automine off first: evm_mine racing a crawling automine lost a
                    # sender's last transfer now and then (neither mined nor pooled).
                    rpc(chain_url, "evm_setAutomine", False)
                rpc(chain_url, "evm_mine")
                nudged += 1
                if nudged > sum(map(len, bodies)):
                    raise RuntimeError(f"raw transfers not mined, even with evm_mine: {receipts}")
                continue
            # 50 ms is the wait's resolution; polling faster only loads the node measured.
            await asyncio.sleep(0.05)
    total = time.perf_counter() - start
    if nudged:
        rpc(chain_url, "evm_setAutomine", True)
    else:
        mined = total
    if not all(int(r["result"]["status"], 16) == 1 for r in receipts if r.get("result")):
        raise RuntimeError("a raw transfer reverted")
    return Raw(stats, sent, mined, total, nudged, time.process_time() - cpu, dropped)


# ---- report ------------------------------------------------------------------------------


def quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def latency_line(name: str, values: list[float], elapsed: float, indent: int = 2) -> str:
    values = sorted(values)
    p50, p99 = 1000 * quantile(values, 0.5), 1000 * quantile(values, 0.99)
    return (
        f"{' ' * indent}{name:<{30 - indent}s} {len(values):6d} req {len(values) / elapsed:8.1f}/s"
        f"   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"
    )


def ok_count(stats: Stats, kind: str) -> int:
    return sum(n for code, n in stats.codes[kind].items() if code.startswith("2"))


def run_raw(server: Server, clients: int, n: int) -> tuple[float, float]:
    """Prints the raw figures; returns accepted transfers per second, and Anvil's CPU
    seconds per accepted transfer."""
    block0 = int(rpc(server.chain_url, "eth_blockNumber"), 16)
    bodies, last = presign(server.chain_url, clients, n)
    cpu0 = server.cpu()
    raw = asyncio.run(raw_baseline(server.chain_url, bodies, last))
    cpu1 = server.cpu()
    blocks = int(rpc(server.chain_url, "eth_blockNumber"), 16) - block0
    accepted = ok_count(raw.stats, "raw")
    print(f"raw eth_sendRawTransaction: {clients} clients, {accepted} pre-signed transfers")
    print(latency_line("accepted", raw.stats.latency["raw"], raw.sent))
    if raw.mined is not None:
        print(
            f"  all mined after {raw.mined:.2f} s, in {blocks} blocks:"
            f" {accepted / raw.mined:.1f} tx/s"
        )
    else:
        print(
            f"  Anvil's automine stalled or crawled with transfers in its pool; evm_mine x"
            f" {raw.nudged} mined the rest ({raw.total:.1f} s in all); the accepted rate"
            " still counts"
        )
    if raw.dropped:
        print(
            f"  ! {raw.dropped} sender(s)' last transfer was dropped by the node (not mined, "
            "not in its pool); the accepted rate still counts"
        )
    for line in raw.stats.errors:
        print(f"    ! {line}")
    cpu = {part: cpu1.get(part, 0.0) - cpu0.get(part, 0.0) for part in ("server", "anvil")}
    print_cpu({**cpu, "this client": raw.client_cpu}, raw.total)
    return accepted / raw.sent, cpu["anvil"] / max(accepted, 1)


def run_lone_writes(server: Server, coop: Cooperative, n: int) -> None:
    """One write at a time on the idle server, each ``?wait=true`` (answered once mined
    and mirrored): the wait of an agent recording a lot by SMS or on the dashboard."""
    seconds = []
    headers = {"Authorization": f"Bearer {coop.key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
        for i in range(n):
            body = lot_body(coop.farmers[i % len(coop.farmers)], i)
            start = time.perf_counter()
            ok(http.post("/cooperative/lots", params={"wait": "true"}, json=body))
            seconds.append(time.perf_counter() - start)
            time.sleep(0.05)  # idle in between, as an agent's writes are
    print(f"lone writes, one at a time, ?wait=true (mined and mirrored): {n}")
    print(latency_line("POST /cooperative/lots", seconds, sum(seconds)))


def run_ceiling(server: Server, coop: Cooperative, args: argparse.Namespace, readers: int) -> float:
    """The mix's ceiling, on the idle server after the drain: the load's readers read while
    its writers ask a path with no route. Prints it; returns those writers' answers/s."""
    cpu0, client0 = server.cpu(), time.process_time()
    stats, elapsed = asyncio.run(
        api_load(server.url, coop, args.clients, readers, args.ceiling_seconds, writing=null_writes)
    )
    cpu1, client1 = server.cpu(), time.process_time()
    print(
        f"the mix's ceiling: {readers} readers + {args.clients - readers} writers asking a path"
        f" with no route instead of writing, {elapsed:.1f} s"
    )
    if stats.latency["read"]:
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(stats.codes["read"].items()))
        print(latency_line("reads", stats.latency["read"], elapsed) + f"   [{codes}]")
    return report_no_route(stats, "null", elapsed, cpu0, cpu1, client1 - client0)


def run_floor(server: Server, coop: Cooperative, args: argparse.Namespace) -> float:
    """The server's floor, on the idle server after the drain: every client asks a path
    with no route (middleware, routing and a problem+json answer; no handler, database or
    node). Prints it; returns its req/s."""
    cpu0, client0 = server.cpu(), time.process_time()
    stats, elapsed = asyncio.run(
        api_load(server.url, coop, args.clients, 0, args.floor_seconds, only=floor)
    )
    cpu1, client1 = server.cpu(), time.process_time()
    print(f"server floor: {args.clients} clients, {elapsed:.1f} s")
    return report_no_route(stats, "floor", elapsed, cpu0, cpu1, client1 - client0)


def report_no_route(
    stats: Stats,
    kind: str,
    elapsed: float,
    cpu0: dict[str, float],
    cpu1: dict[str, float],
    client: float,
) -> float:
    """Prints the answers of ``kind`` (a path with no route: each a 404) and the CPU used
    between ``cpu0`` and ``cpu1`` (the client's: ``client``); returns their rate."""
    print(latency_line("GET /no-such-path", stats.latency[kind], elapsed))
    unexpected = {c: n for c, n in stats.codes[kind].items() if c != "404"}
    if unexpected:
        print(f"    ! not 404: {unexpected}")
    cpu = {part: cpu1.get(part, 0.0) - cpu0.get(part, 0.0) for part in ("server", "anvil")}
    print_cpu({**cpu, "this client": client}, elapsed)
    return sum(stats.codes[kind].values()) / elapsed


def print_cpu(seconds: dict[str, float], elapsed: float) -> None:
    print(
        "  CPU (100% = one core): "
        + ", ".join(f"{part} {100 * used / elapsed:.0f}%" for part, used in seconds.items())
    )


def report_load(stats: Stats, elapsed: float, cpu: dict[str, float]) -> None:
    for kind in ("read", "write"):
        if not stats.latency[kind]:
            continue  # --readers 0
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(stats.codes[kind].items()))
        print(latency_line(f"{kind}s", stats.latency[kind], elapsed) + f"   [{codes}]")
        for label in sorted(k for k in stats.latency if k.startswith(f"{kind}:")):
            print(latency_line(label.partition(":")[2], stats.latency[label], elapsed, indent=4))
    bad = sum(n for codes in stats.codes.values() for c, n in codes.items() if c[0] != "2")
    print(f"  non-2xx answers: {bad}")
    for line in stats.errors:
        print(f"    ! {line}")
    print_cpu(cpu, elapsed)


def drain(server: Server, key: str, timeout: float) -> dict[str, Any]:
    """Wait until the outbox has nothing pending and the mirror is at the head."""
    deadline = time.monotonic() + timeout
    while True:
        now = status(server.url, key)
        busy = any(now["outbox"].get(s, 0) for s in PENDING) or now["mirror"]["lag_blocks"]
        if not busy or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def count_lots(url: str, key: str) -> int:
    """Lots the mirror holds for the cooperative (pages of 200)."""
    total, after = 0, 0
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        while True:
            page = ok(http.get("/cooperative/lots", params={"after": after, "limit": 200}))
            total += len(page["items"])
            if page["next_after"] is None:
                return total
            after = page["next_after"]


def bench(server: Server, args: argparse.Namespace) -> bool:
    """Set-up, load, drain, raw; prints everything; True when every target passes."""
    server.start(args.startup_timeout)
    key = server.operator_key()
    coop = set_up(server.url, key, args.farmers, args.seed_lots)
    print(
        f"konbit run at {server.url} (SQLite, its Anvil at {server.chain_url}); a cooperative"
        f" with {len(coop.farmers)} farmers and {len(coop.lots)} lots;"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    wait_for_mirror(server.url, key, 120)
    before = status(server.url, key)["outbox"]
    cpu0, client0 = server.cpu(), time.process_time()
    readers = (args.clients + 1) // 2 if args.readers is None else args.readers
    writers = args.clients - readers
    stats, elapsed = asyncio.run(api_load(server.url, coop, args.clients, readers, args.seconds))
    cpu1, client1 = server.cpu(), time.process_time()
    load_end = time.perf_counter()
    print(f"API load: {readers} readers + {writers} writers, {elapsed:.1f} s")
    cpu = {part: cpu1.get(part, 0.0) - cpu0.get(part, 0.0) for part in ("server", "anvil")}
    report_load(stats, elapsed, {**cpu, "this client": client1 - client0})

    after = drain(server, key, args.drain_timeout)
    drained = time.perf_counter() - load_end
    left = sum(after["outbox"].get(s, 0) for s in PENDING)
    failed = after["outbox"].get("failed", 0) - before.get("failed", 0)
    mined = after["outbox"].get("mined", 0) - before.get("mined", 0)
    writes = ok_count(stats, "write")
    lots, expected = count_lots(server.url, coop.key), len(coop.lots) + writes
    every = left == 0 and failed == 0 and lots == expected
    print(
        f"outbox drain after the load: {drained:.1f} s"
        + (f" (gave up, {left} still pending)" if left else "")
        + f"; {mined} mined (writes and gas top-ups), {failed} failed;"
        f" {lots} of {expected} lots in the mirror: "
        + ("every write mined and mirrored" if every else "NOT every write mined and mirrored")
    )
    if args.lone_writes > 0:
        run_lone_writes(server, coop, args.lone_writes)
    ceiling_rate = (
        run_ceiling(server, coop, args, readers)
        if readers and writers and args.ceiling_seconds > 0
        else None
    )
    floor_rate = run_floor(server, coop, args) if args.floor_seconds > 0 else None
    # Raw last: a burst of concurrent sends can stall Anvil's automine for good (see
    # raw_baseline), which must not happen under the server's own transactions.
    raw, node_per_raw = run_raw(server, args.clients, args.raw_txs)

    write_rate, mined_rate = writes / elapsed, writes / (elapsed + drained)
    print(
        f"writes accepted (202):       {write_rate:8.1f} /s   ratio {write_rate / raw:.2f} of raw"
    )
    print(
        f"writes mined (load + drain): {mined_rate:8.1f} /s   ratio {mined_rate / raw:.2f} of raw"
    )
    print(f"raw accepted:                {raw:8.1f} tx/s")
    if writes:
        # The node's whole cost of a write (simulation, estimate, send, mining, receipt,
        # the mirror's logs) against a raw transfer's (admission and mining).
        node_per_write = cpu["anvil"] / writes
        print(
            f"node CPU per write:          {1000 * node_per_write:8.2f} ms   per raw transfer"
            f" {1000 * node_per_raw:.2f} ms ({node_per_write / max(node_per_raw, 1e-9):.1f}x;"
            " both until mined"
            + ("" if not stats.latency["read"] else ", the readers' share included")
            + ")"
        )
    if ceiling_rate is not None:
        # No write in this mix can be cheaper than a 404: this bounds the write target.
        print(
            f"mix ceiling (writes as 404s): {ceiling_rate:7.1f} /s   ratio"
            f" {ceiling_rate / raw:.2f} of raw (the most writes/s this mix could give if a"
            " write cost no more than a 404)"
        )
    if floor_rate is not None:
        # What the web framework costs per answer; a write's own work comes on top.
        print(
            f"server floor (404, no route): {floor_rate:7.1f} /s   ratio {floor_rate / raw:.2f}"
            " of raw (the framework's cost per answer; a write's work comes on top)"
        )
    targets = []
    if stats.latency["read"]:  # --readers 0: a write-only run has no read target
        read_p99 = 1000 * quantile(sorted(stats.latency["read"]), 0.99)
        targets.append(
            (
                f"reads p99 < {READ_P99_TARGET_MS:.0f} ms",
                f"{read_p99:.1f} ms",
                read_p99 < READ_P99_TARGET_MS,
            )
        )
    if writers:
        targets.append(
            (
                f"writes >= {WRITE_RATIO_TARGET}x raw",
                f"{write_rate / raw:.2f}x",
                write_rate / raw >= WRITE_RATIO_TARGET,
            )
        )
    print("targets:")
    for name, value, passed in targets:
        print(f"  {name:24s} {value:>10s}   {'PASS' if passed else 'FAIL'}")
    return all(passed for *_, passed in targets)


def main() -> int:
    # A SIGTERM (timeout, a stopped job) ends through `finally`, which stops the server it
    # started: it runs in its own session, so nothing else would (seen: one left running).
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (half write)")
    parser.add_argument(
        "--readers",
        type=int,
        help="how many of the clients read (default: half); 0 for writes only, to find the"
        " write ceiling",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of the API load")
    parser.add_argument("--farmers", type=int, default=4, help="farmers enrolled before the load")
    parser.add_argument("--seed-lots", type=int, default=20, help="lots recorded before the load")
    parser.add_argument("--raw-txs", type=int, default=2000, help="pre-signed raw transfers")
    parser.add_argument(
        "--lone-writes",
        type=int,
        default=20,
        help="writes made one at a time with ?wait=true after the drain (latency); 0: none",
    )
    parser.add_argument(
        "--ceiling-seconds",
        type=float,
        default=10.0,
        help="seconds of the mix's ceiling (writers ask a path with no route), after the"
        " drain; 0: none",
    )
    parser.add_argument(
        "--floor-seconds",
        type=float,
        default=5.0,
        help="seconds of the server's floor (a path with no route), after the drain; 0: none",
    )
    parser.add_argument("--drain-timeout", type=float, default=600.0, help="seconds, at most")
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="seconds, at most")
    parser.add_argument("--workers", type=int, help="KONBIT_WEB_WORKERS (default: per core)")
    parser.add_argument("--threads", type=int, help="KONBIT_REQUEST_THREADS per web worker")
    parser.add_argument("--read-threads", type=int, help="KONBIT_READ_THREADS per web worker")
    parser.add_argument("--write-threads", type=int, help="KONBIT_WRITE_THREADS per web worker")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and its log")
    args = parser.parse_args()
    if args.clients < 2:
        parser.error("--clients must be at least 2 (half read, half write)")
    if args.readers is not None and not 0 <= args.readers < args.clients:
        parser.error("--readers must be at least 0 and fewer than --clients")
    if min(args.farmers, args.seed_lots, args.raw_txs) < 1:
        parser.error("--farmers, --seed-lots and --raw-txs must be at least 1")
    data_dir = Path(tempfile.mkdtemp(prefix="konbit-bench-api-"))
    settings = {}
    if args.workers is not None:
        settings["KONBIT_WEB_WORKERS"] = str(args.workers)
    if args.threads is not None:
        settings["KONBIT_REQUEST_THREADS"] = str(args.threads)
    if args.read_threads is not None:
        settings["KONBIT_READ_THREADS"] = str(args.read_threads)
    if args.write_threads is not None:
        settings["KONBIT_WRITE_THREADS"] = str(args.write_threads)
    server = Server(data_dir, settings)
    try:
        passed = bench(server, args)
    except Exception:
        print(f"--- the server's log, last lines ({server.log_path}):\n{server.tail()}")
        raise
    finally:
        server.stop()
        if args.keep:
            print(f"data directory kept: {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
