"""Signed meter data in OCMF (Open Charge Metering Format): passed on verbatim, checked where a key is known.

A station with a calibration-law meter signs each reading; the CDR carries those strings unchanged so that
the driver can check them with the Transparenzsoftware. Parsing and ECDSA verification use pyocmf: the
signature covers the exact payload bytes, which is why the original string, never a re-serialisation,
is what gets verified and passed on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from enum import StrEnum

from pyocmf import OCMF, PyOCMFError, SpecWarning


class SignatureStatus(StrEnum):
    VERIFIED = "verified"  # the signature matches the payload under the station's public key
    INVALID = "invalid"  # it does not, or it cannot be checked with that key (wrong curve, bad encoding)
    NO_KEY = "no_key"  # no public key is known for the meter: not verified
    UNREADABLE = "unreadable"  # the string is not OCMF


@dataclass(frozen=True, slots=True)
class OcmfCheck:
    status: SignatureStatus
    reason: str = ""

    @property
    def verified(self) -> bool:
        return self.status is SignatureStatus.VERIFIED


def check_ocmf(signed: str, public_key: str | None) -> OcmfCheck:
    """Check one OCMF record (``OCMF|{payload}|{signature}``) against a hex or base64 DER public key."""
    try:
        with warnings.catch_warnings():
            # pyocmf warns about deviations the Transparenzsoftware tolerates; they do not void a signature.
            warnings.simplefilter("ignore", SpecWarning)
            record = OCMF.from_string(signed)
    except PyOCMFError as err:
        return OcmfCheck(SignatureStatus.UNREADABLE, str(err))
    if public_key is None:
        return OcmfCheck(SignatureStatus.NO_KEY, "no public key known for this meter")
    try:
        ok = record.verify_signature(public_key)
    except PyOCMFError as err:
        return OcmfCheck(SignatureStatus.INVALID, str(err))
    if ok:
        return OcmfCheck(SignatureStatus.VERIFIED)
    return OcmfCheck(SignatureStatus.INVALID, "the signature does not match the payload")


def check_all(signed_values: tuple[str, ...], public_key: str | None) -> OcmfCheck:
    """One verdict for a CDR's signed values: verified only when every one of them is."""
    if not signed_values:
        return OcmfCheck(SignatureStatus.NO_KEY, "the station provided no signed meter data")
    for signed in signed_values:
        check = check_ocmf(signed, public_key)
        if not check.verified:
            return check
    return OcmfCheck(SignatureStatus.VERIFIED)
