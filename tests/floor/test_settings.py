from __future__ import annotations

from pathlib import Path

import pytest

from floor.settings import FloorSettings


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
