"""TestStablecoin: 6 decimals and a capped faucet."""

from conftest import USD, ZERO, err


def test_faucet(system):
    u = system.usd
    assert u.decimals() == 6
    tx = u.faucet(system.outsider, 5 * USD, {"from": system.outsider})
    assert u.balanceOf(system.outsider) == 5 * USD
    assert tx.events["FaucetMinted"]["amount"] == 5 * USD


def test_faucet_errors(system):
    u = system.usd
    with err("FaucetLimitExceeded"):
        u.faucet(system.outsider, u.FAUCET_MAX() + 1, {"from": system.outsider})
    with err("FaucetZeroAddress"):
        u.faucet(ZERO, 1, {"from": system.outsider})
