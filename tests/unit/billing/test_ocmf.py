from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from chargeflow.billing.ocmf import SignatureStatus, check_all, check_ocmf

from .ocmf_fixtures import key_pair, signed_reading

PRIVATE, PUBLIC = key_pair()
START = signed_reading(PRIVATE, "12.345", "B", "2024-03-01T08:00:00,000+0000 S")
END = signed_reading(PRIVATE, "32.345", "E", "2024-03-01T10:00:00,000+0000 S")


def test_a_genuine_record_is_verified() -> None:
    assert check_ocmf(START, PUBLIC).status is SignatureStatus.VERIFIED
    assert check_all((START, END), PUBLIC).verified


def test_a_changed_reading_is_not_verified() -> None:
    forged = END.replace('"RV":32.345', '"RV":22.345')
    assert forged != END
    check = check_ocmf(forged, PUBLIC)
    assert check.status is SignatureStatus.INVALID
    assert not check_all((START, forged), PUBLIC).verified


def test_another_meters_key_does_not_verify() -> None:
    _, other = key_pair()
    assert check_ocmf(START, other).status is SignatureStatus.INVALID
    _, other_curve = key_pair(ec.SECP384R1())
    check = check_ocmf(START, other_curve)
    assert check.status is SignatureStatus.INVALID
    assert "curve" in check.reason


def test_without_a_key_nothing_is_verified() -> None:
    assert check_ocmf(START, None).status is SignatureStatus.NO_KEY
    assert check_all((), PUBLIC).status is SignatureStatus.NO_KEY


def test_not_ocmf_is_unreadable() -> None:
    assert check_ocmf("EDL40|something else", PUBLIC).status is SignatureStatus.UNREADABLE
