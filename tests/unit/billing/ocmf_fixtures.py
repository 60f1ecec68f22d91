"""OCMF records signed on the fly with a throw-away key, as a calibration-law meter would sign them."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def key_pair(curve: ec.EllipticCurve | None = None) -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(curve or ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.hex()


def signed_reading(private: ec.EllipticCurvePrivateKey, kwh: str, tx: str, at: str) -> str:
    payload = {
        "FV": "1.0",
        "GI": "Chargeflow Test Meter",
        "GS": "GS-0001",
        "GV": "1.0",
        "PG": "T1",
        "MV": "Example Meters",
        "MM": "EM-1",
        "MS": "MS-0001",
        "MF": "1.0",
        "IS": True,
        "IL": "VERIFIED",
        "IF": ["RFID_PLAIN"],
        "IT": "ISO14443",
        "ID": "1F2D3A4B",
        "RD": [
            {"TM": at, "TX": tx, "RV": kwh, "RI": "1-b:1.8.0", "RU": "kWh", "RT": "AC", "EF": "", "ST": "G"}
        ],
    }
    # The meter's own JSON text, numbers as it writes them; the signature covers exactly these bytes.
    text = json.dumps(payload, separators=(",", ":")).replace(f'"RV":"{kwh}"', f'"RV":{kwh}')
    signature = private.sign(text.encode(), ec.ECDSA(hashes.SHA256())).hex()
    return f'OCMF|{text}|{{"SA":"ECDSA-secp256r1-SHA256","SD":"{signature}"}}'
