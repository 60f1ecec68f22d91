"""The ``chargeflow serve --config FILE`` file (YAML), validated once and turned into frozen settings.

```yaml
ocpp:
  auto_register: false          # accept unknown stations and register them
  heartbeat_interval_s: 300
  call_timeout_s: 30            # bound on every CALL we send, and on API operations
  versions: [ocpp2.1, ocpp2.0.1, ocpp1.6]
  stations:                     # per-station overrides for stations that bend the standard
    OLD-CP-7: {versions: [ocpp1.6], strict: false}
  tls:                          # wss://, security profile 2; with client_ca, profile 3
    cert: server.pem            # paths relative to this file
    key: server.key
    client_ca: stations-ca.pem  # stations prove who they are with certificates this CA signed
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chargeflow.protocols.ocpp.frames import OcppVersion
from chargeflow.protocols.ocpp.server import PREFERENCE, StationPolicy, TlsSettings
from chargeflow.site.config import ConfigError, format_validation_error


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StationOverride(_Model):
    versions: list[OcppVersion] | None = Field(default=None, min_length=1)
    strict: bool = True


class TlsSection(_Model):
    cert: Path
    key: Path
    client_ca: Path | None = None

    def settings(self, base: Path) -> TlsSettings:
        """With relative paths read from ``base`` (the config file's folder); each file must exist."""
        client_ca = None if self.client_ca is None else base / self.client_ca
        return tls_settings(
            base / self.cert,
            base / self.key,
            client_ca,
            ("ocpp.tls.cert", "ocpp.tls.key", "ocpp.tls.client_ca"),
        )


def tls_settings(cert: Path, key: Path, client_ca: Path | None, names: tuple[str, str, str]) -> TlsSettings:
    """The TLS files, each checked to exist; an error names the setting (``names``: cert, key, CA)."""
    for name, path in zip(names, (cert, key, client_ca), strict=True):
        if path is not None and not path.is_file():
            raise ConfigError(f"{name}: no such file: {path}")
    return TlsSettings(cert, key, client_ca)


class OcppSection(_Model):
    auto_register: bool = False
    heartbeat_interval_s: Annotated[int, Field(ge=10, le=86_400)] = 300
    call_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    versions: list[OcppVersion] = Field(default_factory=lambda: list(PREFERENCE), min_length=1)
    stations: dict[str, StationOverride] = Field(default_factory=dict)
    tls: TlsSection | None = None

    def default_policy(self) -> StationPolicy:
        return StationPolicy(versions=_ordered(self.versions))

    def policies(self) -> dict[str, StationPolicy]:
        return {
            station_id: StationPolicy(
                versions=_ordered(override.versions or self.versions), strict=override.strict
            )
            for station_id, override in self.stations.items()
        }


class ServeFile(_Model):
    ocpp: OcppSection = OcppSection()


def _ordered(versions: list[OcppVersion]) -> tuple[OcppVersion, ...]:
    """Newest first, whatever order the file lists them in."""
    return tuple(v for v in PREFERENCE if v in versions)


def load_serve_file(path: Path) -> ServeFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    try:
        return ServeFile.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(str(path), err)) from None
