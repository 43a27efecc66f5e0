"""ClusterRegistry: organisations, roles, farmers."""

from brownie import ClusterRegistry, accounts
from conftest import META, ZERO, err


def test_constructor_zero_admin():
    with err("ZeroAddress"):
        ClusterRegistry.deploy(ZERO, {"from": accounts[0]})


def test_admin_holds_admin_and_operator(system):
    r = system.registry
    assert r.hasRole(r.DEFAULT_ADMIN_ROLE(), system.admin)
    assert r.hasRole(r.OPERATOR_ROLE(), system.admin)


def test_register_organisation(system):
    r, new = system.registry, accounts.add()
    tx = r.registerOrganisation(new, r.EXPORTER_ROLE(), META, {"from": system.admin})
    assert r.hasRole(r.EXPORTER_ROLE(), new)
    assert r.organisationMetadata(new) == META
    ev = tx.events["OrganisationRegistered"]
    assert (
        ev["organisation"] == new and ev["role"] == r.EXPORTER_ROLE() and ev["metadataHash"] == META
    )
    assert "RoleGranted" in tx.events


def test_register_organisation_errors(system):
    r, a = system.registry, system.admin
    with err("ZeroAddress"):
        r.registerOrganisation(ZERO, r.EXPORTER_ROLE(), META, {"from": a})
    with err("NotAnOrganisationRole"):
        r.registerOrganisation(accounts[8], r.OPERATOR_ROLE(), META, {"from": a})
    with err("EmptyMetadataHash"):
        r.registerOrganisation(accounts[8], r.EXPORTER_ROLE(), "0x" + "00" * 32, {"from": a})
    with err("AccessControlUnauthorizedAccount"):
        r.registerOrganisation(accounts[8], r.EXPORTER_ROLE(), META, {"from": system.coop})


def test_update_metadata(system):
    r = system.registry
    new = "0x" + "22" * 32
    tx = r.updateOrganisationMetadata(system.coop, new, {"from": system.admin})
    assert r.organisationMetadata(system.coop) == new
    assert tx.events["OrganisationMetadataUpdated"]["metadataHash"] == new
    with err("UnknownOrganisation"):
        r.updateOrganisationMetadata(system.outsider, new, {"from": system.admin})
    with err("EmptyMetadataHash"):
        r.updateOrganisationMetadata(system.coop, "0x" + "00" * 32, {"from": system.admin})
    with err("AccessControlUnauthorizedAccount"):
        r.updateOrganisationMetadata(system.coop, new, {"from": system.coop})


def test_operator_grants_and_revokes_roles(system):
    r = system.registry
    r.revokeRole(r.COOPERATIVE_ROLE(), system.coop2, {"from": system.admin})
    assert not r.hasRole(r.COOPERATIVE_ROLE(), system.coop2)
    r.grantRole(r.COOPERATIVE_ROLE(), system.coop2, {"from": system.admin})
    assert r.hasRole(r.COOPERATIVE_ROLE(), system.coop2)


def test_enroll_and_status(system):
    r, f = system.registry, accounts.add()
    tx = r.enrollFarmer(f, {"from": system.coop})
    assert tx.events["FarmerEnrolled"]["cooperative"] == system.coop
    assert r.farmerInfo(f) == (system.coop, True)
    assert r.isActiveFarmerOf(f, system.coop)
    tx = r.setFarmerActive(f, False, {"from": system.coop})
    assert tx.events["FarmerStatusChanged"]["active"] is False
    assert not r.isActiveFarmerOf(f, system.coop)
    r.setFarmerActive(f, True, {"from": system.coop})
    assert r.isActiveFarmerOf(f, system.coop)


def test_farmer_errors(system):
    r = system.registry
    with err("NotACooperative"):
        r.enrollFarmer(accounts.add(), {"from": system.exporter})
    with err("ZeroAddress"):
        r.enrollFarmer(ZERO, {"from": system.coop})
    with err("FarmerAlreadyEnrolled"):
        r.enrollFarmer(system.farmer, {"from": system.coop2})
    with err("FarmerNotInCooperative"):
        r.setFarmerActive(system.farmer, False, {"from": system.coop2})
    with err("FarmerStatusUnchanged"):
        r.setFarmerActive(system.farmer, True, {"from": system.coop})
    with err("NotACooperative"):
        r.setFarmerActive(system.farmer, False, {"from": system.outsider})
