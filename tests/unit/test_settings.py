from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.settings import Settings


def test_defaults_match_the_documented_ones() -> None:
    settings = Settings.from_env({})
    assert settings.sandbox_port == 3003 and settings.max_execution_time == 30_000
    assert settings.enable_networking is False and settings.docker_image == "penny-sandbox:latest"
    assert settings.worker_name  # the host name


@pytest.mark.parametrize("name, value, message", [
    ("SANDBOX_PORT", "abc", "SANDBOX_PORT must be an integer, got 'abc'"),
    ("ENABLE_NETWORKING", "maybe", "ENABLE_NETWORKING must be true or false"),
    ("MAX_EXECUTION_TIME", "5", "MAX_EXECUTION_TIME must be >= 100"),
    ("PRELOAD_MODULES", "numpy,os.path;rm", "PRELOAD_MODULES must be a comma-separated list"),
    ("REDIS_URL", " ", "REDIS_URL must not be empty"),
    ("EGRESS_NETWORK", "penny-egress-network", "EGRESS_NETWORK must be 1 to 15 characters"),
    ("EGRESS_NETWORK", "-x", "EGRESS_NETWORK must be 1 to 15 characters"),
    ("EGRESS_SUBNET", "172.31.255.1/24", "EGRESS_SUBNET must be an IPv4 subnet"),
    ("EGRESS_SUBNET", "8.8.8.0/24", "EGRESS_SUBNET must be a private IPv4 subnet"),
])
def test_a_bad_value_names_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env({name: value})


def test_values_are_parsed() -> None:
    settings = Settings.from_env({"ENABLE_NETWORKING": "false", "PRELOAD_MODULES": "numpy, json", "POOL_SIZE": "7"})
    assert not settings.enable_networking and settings.preload_modules == ("numpy", "json")
    assert settings.pool_size == 7


def test_networking_can_be_enabled_with_its_egress_network() -> None:
    settings = Settings.from_env({"ENABLE_NETWORKING": "true", "EGRESS_NETWORK": "egress0",
                                  "EGRESS_SUBNET": "10.99.0.0/24"})
    assert settings.enable_networking
    assert (settings.egress_network, settings.egress_subnet) == ("egress0", "10.99.0.0/24")
