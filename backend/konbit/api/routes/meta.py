"""What this API serves (no login): its version, the chain and the contracts on it."""

from __future__ import annotations

from fastapi import Request

from konbit import __version__
from konbit.api.problems import Problem
from konbit.api.resources import Meta
from konbit.api.routing import ApiRouter
from konbit.runtime import Runtime

router = ApiRouter(tags=["meta"])

#: The address book's name of the stablecoin orders are paid in unless they name another.
STABLECOIN = "TestStablecoin"


@router.get(
    "/meta",
    response_model=Meta,
    responses={503: {"description": "The chain node does not answer"}},
)
def meta(request: Request) -> Meta:
    """Chain id, genesis block hash, contract addresses and API version.

    Enough for a client to check it talks to the chain it expects and to read the
    contracts itself. Empty ``contracts`` until ``konbit deploy`` ran on this chain.
    """
    runtime: Runtime = request.app.state.runtime
    try:
        chain_id = runtime.chain_id
        genesis = runtime.rpc.genesis()
    except Exception:
        raise Problem(503, "the chain node does not answer") from None
    book = runtime.address_book()
    contracts = dict(book.addresses) if book else {}
    return Meta(
        api_version=__version__,
        chain_id=chain_id,
        genesis_hash=genesis,
        deploy_block=book.deploy_block if book else None,
        contracts=contracts,
        token=contracts.get(STABLECOIN),
    )
