from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from config.processes import child_env
from config.settings import DatabaseUrlMissing, FloorSettings
from floor.services import ensure_password
from floor.stack import start_floor
from floor.supervisor import ServiceFailed, Supervisor


def test_real_deployments_come_from_the_operators_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://ledger@db.internal/floor")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "kafka-1:9092")
    monkeypatch.setenv("IB_PORT", "7497")
    settings = FloorSettings()
    assert settings.db_url == "postgresql://ledger@db.internal/floor"
    assert settings.kafka == "kafka-1:9092"
    assert settings.ib_port == 7497
    assert settings.temporal == "127.0.0.1:7233"  # not set: the embedded default


def test_test_settings_never_reach_a_deployment_named_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP", "TEMPORAL_ADDRESS", "IB_HOST"):
        monkeypatch.setenv(name, "production-host:1")
    settings = FloorSettings.on_free_ports(tmp_path)
    assert "production" not in settings.db_url + settings.kafka + settings.temporal
    assert settings.ib_gateway_host == "127.0.0.1"
    ports = [settings.pg_port, settings.kafka_port, settings.temporal_port, settings.api_port,
             settings.ib_port, settings.ib_standby_port, settings.venue_port]
    assert len(set(ports)) == len(ports)
    assert settings.var_dir == tmp_path


def test_with_database_url_each_process_needs_its_own_role_url_and_is_told_which(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://floor_owner@db.internal/floor")
    monkeypatch.setenv("FLOOR_HOTPATH_DATABASE_URL", "postgresql://floor_hotpath@db.internal/floor")
    settings = FloorSettings(var_dir=tmp_path)
    assert settings.owner_url == "postgresql://floor_owner@db.internal/floor"
    assert settings.role_url("hotpath") == "postgresql://floor_hotpath@db.internal/floor"
    with pytest.raises(DatabaseUrlMissing, match="FLOOR_API_DATABASE_URL is not set.*floor_api"):
        settings.role_url("api")


def test_embedded_roles_use_their_generated_passwords_and_say_how_to_get_them(tmp_path: Path) -> None:
    settings = FloorSettings.on_free_ports(tmp_path)
    with pytest.raises(DatabaseUrlMissing, match="floor up"):
        settings.role_url("worker")
    ensure_password(settings, "floor_worker")
    secret = settings.db_secrets_dir / "floor_worker.password"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    url = urlsplit(settings.role_url("worker"))
    assert (url.username, url.password) == ("floor_worker", secret.read_text().strip())


def test_a_child_process_gets_its_own_role_url_and_never_the_administrators(tmp_path: Path) -> None:
    settings = FloorSettings.on_free_ports(tmp_path)
    for role in ("hotpath", "api", "worker", "cli"):
        ensure_password(settings, f"floor_{role}")
    env = child_env(settings, "api")
    assert env["DATABASE_URL"] is None
    assert env["FLOOR_API_DATABASE_URL"] == settings.role_url("api")
    assert env["FLOOR_HOTPATH_DATABASE_URL"] is None and env["FLOOR_CLI_DATABASE_URL"] is None


def test_floor_up_against_a_real_database_without_per_process_urls_stops_before_starting_anything(
    tmp_path: Path,
) -> None:
    settings = FloorSettings.on_free_ports(tmp_path).model_copy(
        update={"database_url": "postgresql://floor_owner@db.internal/floor"}
    )
    supervisor = Supervisor(settings.log_dir)
    with pytest.raises(ServiceFailed, match="FLOOR_HOTPATH_DATABASE_URL is not set"):
        start_floor(settings, supervisor, lambda line: None)
    assert not supervisor.running


def test_the_webauthn_origin_is_the_apis_own_address_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOOR_WEBAUTHN_ORIGIN", raising=False)
    assert FloorSettings().webauthn_origin == "http://localhost:8000"
    monkeypatch.setenv("FLOOR_API_PORT", "9100")
    settings = FloorSettings()
    assert settings.webauthn_origin == "http://localhost:9100"
    assert settings.webauthn_origin_problem(9100) is None
    monkeypatch.setenv("FLOOR_WEBAUTHN_ORIGIN", "https://localhost:9100")
    assert FloorSettings().webauthn_origin_problem(9100) is None


@pytest.mark.parametrize(
    ("origin", "named"),
    [
        ("http://localhost:8000", "names port 8000, but the API listens on 9100"),
        ("http://127.0.0.1:9100", "names host 127.0.0.1, but the relying party id is localhost"),
        ("http://localhost", "names port 80, but the API listens on 9100"),
        ("localhost:9100", "is no origin"),
        ("http://localhost:9100/enrol", "is no origin"),
    ],
)
def test_the_api_refuses_to_start_with_an_origin_no_page_of_its_can_have(
    origin: str, named: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "FLOOR_VAR_DIR": str(tmp_path),
        "FLOOR_API_PORT": "9100",
        "FLOOR_WEBAUTHN_ORIGIN": origin,
    }
    done = subprocess.run(
        [sys.executable, "-m", "api", "--port", "9100"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert named in done.stderr
    assert "set FLOOR_WEBAUTHN_ORIGIN=http://localhost:9100, or unset it" in done.stderr
