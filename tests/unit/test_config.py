"""Settings: defaults that work, and one clear line for each bad variable."""

from __future__ import annotations

import pytest

from reengage.config import Settings, load_settings
from reengage.errors import ConfigError


def test_defaults_need_nothing_and_use_a_local_sqlite_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"REENGAGE_{name.upper()}", raising=False)
    settings = load_settings(env_file=None)
    assert settings.database_url == "sqlite:///reengage.db"
    assert settings.timezone == "UTC"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("REENGAGE_TIMEZONE", "Mars/Olympus", "REENGAGE_TIMEZONE: 'Mars/Olympus' is not an IANA"),
        ("REENGAGE_DATABASE_URL", "mysql://x", "REENGAGE_DATABASE_URL: must start with sqlite"),
        ("REENGAGE_DATABASE_URL", "postgresql://u@h/db", "postgresql+psycopg://"),
        ("REENGAGE_SMTP_PORT", "seventy", "REENGAGE_SMTP_PORT: "),
        ("REENGAGE_SECRET_KEY", "short", "REENGAGE_SECRET_KEY: is too short"),
        ("REENGAGE_LOG_LEVEL", "loud", "REENGAGE_LOG_LEVEL: must be one of"),
        (
            "REENGAGE_CURRENCY",
            "xyz",
            "REENGAGE_CURRENCY: 'xyz' is not an ISO 4217 currency code like EUR",
        ),
        ("REENGAGE_CURRENCY", "euro", "REENGAGE_CURRENCY: 'euro' is not an ISO 4217"),
    ],
)
def test_a_malformed_setting_names_the_variable_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings(env_file=None)
    assert expected in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_a_currency_is_read_in_any_case_and_kept_upper_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REENGAGE_CURRENCY", " usd ")
    assert load_settings(env_file=None).currency == "USD"


def test_secret_key_is_demanded_only_where_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REENGAGE_SECRET_KEY", raising=False)
    settings = load_settings(env_file=None)
    with pytest.raises(ConfigError, match="REENGAGE_SECRET_KEY is not set"):
        settings.require_secret_key()
