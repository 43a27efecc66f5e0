"""Schemathesis against the real server: no key, a key of each role, the operator's key.

``make schemathesis`` runs this with the main venv's Python; schemathesis itself lives in
``.venv-schemathesis`` (eth-brownie pins hypothesis 6.27, schemathesis 4 needs a newer one).

What it does, all in a fresh temporary data directory on free ports:

1. ``konbit run``: migrations, the managed Anvil, the contracts deployed, the API served.
2. ``konbit apikey`` for an operator key; the operator onboards a custodial organisation of
   each role (``POST /operator/organisations?wait=true``) and issues each a key; the
   cooperative enrols a farmer and records a lot, so that small drawn ids reach past the 404s.
3. ``schemathesis run URL/openapi.json --checks all`` eight times: without a key, with a
   key of each role (cooperative, exporter, logistics, financier, inspector, arbiter), with
   the operator's key (last: it may revoke the other keys).
   Every check: no 5xx, no undocumented status code, no response off its schema, no
   schema-violating request accepted, no valid one refused, ...
4. Stops the server and the chain it started (nothing else), removes the directory.

Exit status: non-zero when any run fails or the server could not be set up.

The server runs with a rate limit and a gas budget that the fuzzing cannot reach
(``KONBIT_RATE_LIMIT``, ``KONBIT_GAS_BUDGET_WEI_PER_DAY=0``): a 429 is documented on every
keyed operation, but once a key is throttled every later request answers 429 and the
fuzzing would test nothing else.

Knobs (environment): ``SCHEMATHESIS_MAX_EXAMPLES`` (default 10) examples per operation and
phase, ``SCHEMATHESIS_SEED``, ``SCHEMATHESIS_WORKERS`` (default 1), ``SCHEMATHESIS_ARGS``
(more options for each run, e.g. ``--include-path-regex ^/cooperative/`` to chase one
finding). ``scripts/schemathesis.toml`` holds the per-operation settings, each with its
reason. The whole target takes about four to five minutes on two cores.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SCHEMATHESIS = ROOT / ".venv-schemathesis" / "bin" / "schemathesis"
KONBIT = ROOT / ".venv" / "bin" / "konbit"
CONFIG = ROOT / "scripts" / "schemathesis.toml"
#: Examples per operation and phase with a key; without one, every keyed operation answers
#: 401 whatever is sent, so half as many do.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10"))
#: One worker: hypothesis describes strategies with ast.parse, which on CPython 3.11 can
#: fail in concurrent threads ("AST constructor recursion depth mismatch", cpython#106905).
WORKERS = os.environ.get("SCHEMATHESIS_WORKERS", "1")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261129")
#: Each role's operations are fuzzed with a key of that role (with another role's key they
#: answer 403 before reading the body).
ROLES = ("cooperative", "exporter", "logistics", "financier", "inspector", "arbiter")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(message: str) -> None:
    print(f"== schemathesis: {message}", flush=True)


def call(url: str, method: str = "GET", body: Any = None, key: str | None = None) -> Any:
    """One JSON request; the decoded answer, or an error naming the status and body."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    reply = httpx.request(method, url, json=body, headers=headers, timeout=120)
    if reply.is_error:
        raise RuntimeError(f"{method} {url} -> {reply.status_code} {reply.text[:500]}")
    return reply.json()


def wait_healthy(url: str, server: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"konbit run exited with {server.returncode} before serving")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"no healthy answer from {url}/healthz within {timeout:.0f}s")


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGINT to the server we started (uvicorn shuts down, ``konbit run`` stops its chain)."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def setup(url: str, env: dict[str, str], cwd: Path) -> dict[str, str]:
    """A key per role (the operator's and one organisation's of each other role), with a
    farmer and a lot on record, so that small drawn ids reach past the 404s."""
    issued = subprocess.run(
        [str(KONBIT), "apikey", "--label", "schemathesis"],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    keys = {"operator": issued.stdout.strip().splitlines()[-1]}
    for role in ROLES:
        created = call(
            url + "/operator/organisations?wait=true",
            "POST",
            {"name": f"Schemathesis {role}", "role": role},
            keys["operator"],
        )
        address = created["organisation"]["address"]
        keys[role] = call(
            f"{url}/operator/organisations/{address}/keys",
            "POST",
            {"label": "schemathesis"},
            keys["operator"],
        )["key"]
    farmer = call(
        url + "/cooperative/farmers?wait=true",
        "POST",
        {"name": "Schemathesis farmer"},
        keys["cooperative"],
    )["farmer"]["address"]
    lot = {"farmer": farmer, "crop": 1, "grams": 100_000, "grade": 3, "harvest_time": 1}
    call(url + "/cooperative/lots?wait=true", "POST", lot, keys["cooperative"])
    return keys


def fuzz(url: str, who: str, key: str | None, cwd: Path, examples: int) -> int:
    command = [
        str(SCHEMATHESIS),
        "--no-color",
        "--config-file",
        str(CONFIG),
        "run",
        url + "/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(examples),
        "--workers",
        WORKERS,
        "--seed",
        SEED,
        "--generation-database",
        "none",
        "--request-timeout",
        "90",
    ]
    if key:
        command += ["--header", f"Authorization: Bearer {key}"]
    command += shlex.split(os.environ.get("SCHEMATHESIS_ARGS", ""))
    say(f"run {who}")
    started = time.monotonic()
    code = subprocess.run(command, cwd=cwd, check=False).returncode
    say(f"run {who}: exit {code} in {time.monotonic() - started:.0f}s")
    return code


def main() -> int:
    if not SCHEMATHESIS.exists():
        print(f"{SCHEMATHESIS} is missing: run `make schemathesis`", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="konbit-schemathesis."))
    port, chain_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONBIT_")}
    env.update(
        KONBIT_DATA_DIR=str(work / "data"),
        KONBIT_PORT=str(port),
        KONBIT_CHAIN_PORT=str(chain_port),
        KONBIT_RATE_LIMIT="1000000/minute",
        KONBIT_GAS_BUDGET_WEI_PER_DAY="0",
        KONBIT_LOG_LEVEL="WARNING",
        # ?wait=true answers once the mirror has the write: let it look often.
        KONBIT_MIRROR_POLL_SECONDS="0.05",
    )
    url = f"http://127.0.0.1:{port}"
    log = (work / "server.log").open("wb")
    say(f"konbit run on {url} (chain on {chain_port}, data in {work})")
    # cwd: the temporary directory, so that no developer's .env is read.
    server = subprocess.Popen([str(KONBIT), "run"], env=env, cwd=work, stdout=log, stderr=log)
    failed = True
    try:
        wait_healthy(url, server)
        keys = setup(url, env, work)
        codes: dict[str, int] = {}
        runs: list[tuple[str, str | None, int]] = [
            ("without a key", None, max(1, MAX_EXAMPLES // 2))
        ]
        runs += [(f"with the {role} key", keys[role], MAX_EXAMPLES) for role in ROLES]
        # Last: the operator may revoke the other keys (DELETE /operator/keys/2).
        runs.append(("with the operator's key", keys["operator"], MAX_EXAMPLES))
        for who, key, examples in runs:
            codes[who] = fuzz(url, who, key, work, examples)
        for who, code in codes.items():
            say(f"{who}: {'passed' if code == 0 else f'FAILED (exit {code})'}")
        failed = any(codes.values())
    except Exception as exc:
        print(f"schemathesis: {exc}", file=sys.stderr)
    finally:
        stop(server)
        log.close()
        errors = [
            line
            for line in (work / "server.log").read_text(errors="replace").splitlines()
            if " ERROR " in line or "Traceback" in line
        ]
        if errors:
            say("server errors:\n" + "\n".join(errors[:50]))
            failed = True
        if failed:
            say(f"server log kept at {work / 'server.log'}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
