"""``chargeflow serve`` settings: defaults with no arguments, the config file, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from chargeflow.cli import build_parser
from chargeflow.commands.serve import settings_from
from chargeflow.protocols.ocpp.frames import OcppVersion
from chargeflow.site.config import ConfigError


def test_no_arguments_gives_the_documented_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    settings, generated = settings_from(args, {})
    assert (settings.host, settings.ocpp_port, settings.http_port) == ("127.0.0.1", 9000, 8000)
    assert settings.database_url == "sqlite+aiosqlite:///chargeflow.db"
    assert generated
    assert len(settings.admin_token) >= 24
    assert not settings.auto_register


def test_environment_sets_database_and_token() -> None:
    args = build_parser().parse_args(["serve", "--ocpp-port", "9100", "--host", "127.0.0.2"])
    env = {"CHARGEFLOW_DATABASE_URL": "postgresql+asyncpg://db/x", "CHARGEFLOW_ADMIN_TOKEN": "tok"}
    settings, generated = settings_from(args, env)
    assert (settings.database_url, settings.admin_token, generated) == (
        "postgresql+asyncpg://db/x",
        "tok",
        False,
    )
    assert (settings.host, settings.ocpp_port) == ("127.0.0.2", 9100)


def test_config_file_sets_per_station_overrides(tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text(
        "ocpp:\n"
        "  auto_register: true\n"
        "  versions: [ocpp1.6, ocpp2.0.1]\n"
        "  stations:\n"
        "    OLD: {versions: [ocpp1.6], strict: false}\n"
    )
    settings, _ = settings_from(build_parser().parse_args(["serve", "--config", str(config)]), {})
    assert settings.auto_register
    assert settings.default_policy.versions == (OcppVersion.V201, OcppVersion.V16)
    old = settings.station_policies["OLD"]
    assert (old.versions, old.strict) == ((OcppVersion.V16,), False)


def test_config_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("ocpp:\n  stations:\n    X: {versions: [ocpp3.0]}\n")
    with pytest.raises(ConfigError) as err:
        settings_from(build_parser().parse_args(["serve", "--config", str(config)]), {})
    assert str(config) in str(err.value)
    assert "ocpp.stations.X.versions[0]" in str(err.value)


def test_tls_from_the_config_file_reads_its_paths_beside_the_file(tmp_path: Path) -> None:
    for name in ("server.pem", "server.key", "ca.pem"):
        (tmp_path / name).write_text("-")
    config = tmp_path / "serve.yaml"
    config.write_text("ocpp:\n  tls: {cert: server.pem, key: server.key, client_ca: ca.pem}\n")
    settings, _ = settings_from(build_parser().parse_args(["serve", "--config", str(config)]), {})
    assert settings.tls is not None
    assert (settings.tls.cert_file, settings.tls.client_ca_file) == (
        tmp_path / "server.pem",
        tmp_path / "ca.pem",
    )
    assert settings.tls.profile == 3


def test_tls_options_are_checked_before_the_server_starts(tmp_path: Path) -> None:
    cert = tmp_path / "server.pem"
    cert.write_text("-")
    with pytest.raises(ConfigError, match="--tls-cert and --tls-key go together"):
        settings_from(build_parser().parse_args(["serve", "--tls-cert", str(cert)]), {})
    missing = tmp_path / "missing.key"
    with pytest.raises(ConfigError, match="--tls-key: no such file"):
        settings_from(
            build_parser().parse_args(["serve", "--tls-cert", str(cert), "--tls-key", str(missing)]), {}
        )
    key = tmp_path / "server.key"
    key.write_text("-")
    args = build_parser().parse_args(["serve", "--tls-cert", str(cert), "--tls-key", str(key)])
    settings, _ = settings_from(args, {})
    assert settings.tls is not None
    assert settings.tls.profile == 2
