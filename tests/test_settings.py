"""Settings read as operators write them; bad values are refused with a clear message."""

import pytest

from core.config import ConfigError, load


def _prod(tmp_path, **environ):
    base = {"QALITEL_ENV": "production", "QALITEL_SECRET_KEY": "s" * 40,
            "QALITEL_ENCRYPTION_KEY": "x" * 43 + "=", "QALITEL_INSTANCE_DIR": str(tmp_path)}
    return load(environ={**base, **environ})


def test_production_requires_the_external_url(tmp_path):
    with pytest.raises(ConfigError, match="QALITEL_EXTERNAL_URL"):
        _prod(tmp_path)


@pytest.mark.parametrize("raw", ["qalitel.example.com", "ftp://qalitel.example.com",
                                 "https://", "https://h.example/path", "https://h.example/?q=1",
                                 "https://user:pw@h.example", "https://h.example/#x"])
def test_an_external_url_other_than_scheme_and_host_is_refused(tmp_path, raw):
    with pytest.raises(ConfigError, match="scheme and host"):
        _prod(tmp_path, QALITEL_EXTERNAL_URL=raw)


def test_production_trusts_the_external_host_and_the_tenant_subdomains(tmp_path):
    settings = _prod(tmp_path, QALITEL_EXTERNAL_URL="https://QALITEL.example.com/",
                     QALITEL_SERVER_NAME="qalitel.example.com")
    assert settings.external_url == "https://qalitel.example.com"
    assert settings.trusted_hosts == ("qalitel.example.com", ".qalitel.example.com")


def test_development_defaults_to_the_local_server(tmp_path):
    settings = load(environ={"QALITEL_INSTANCE_DIR": str(tmp_path)})
    assert settings.external_url == "http://127.0.0.1:5000"
    assert settings.trusted_hosts == ()


@pytest.mark.parametrize(("raw", "expected"), [
    ("postgresql://u:p@db.example:5433/platform", "postgresql+psycopg2://u:p@db.example:5433/platform"),
    ("postgres://u@db.example/platform", "postgresql+psycopg2://u@db.example/platform"),
    ("POSTGRES://u@db.example/platform", "postgresql+psycopg2://u@db.example/platform"),
    (" postgresql://u@db.example/platform ", "postgresql+psycopg2://u@db.example/platform"),
    ("postgresql+psycopg2://u@db.example/platform", "postgresql+psycopg2://u@db.example/platform"),
    ("postgresql+pg8000://u@db.example/platform", "postgresql+pg8000://u@db.example/platform"),
    ("sqlite:////srv/qalitel/platform.sqlite3", "sqlite:////srv/qalitel/platform.sqlite3"),
])
def test_database_urls_are_accepted_as_operators_write_them(tmp_path, raw, expected):
    settings = load(environ={"QALITEL_INSTANCE_DIR": str(tmp_path), "QALITEL_DATABASE_URL": raw,
                             "QALITEL_TENANT_SERVER_URL": raw})
    assert settings.database_url == expected
    assert settings.tenant_server_url == expected


def test_overrides_are_normalised_too(tmp_path):
    settings = load({"database_url": "postgres://u@h/p", "tenant_server_url": "postgres://u@h/t"},
                    environ={"QALITEL_INSTANCE_DIR": str(tmp_path)})
    assert (settings.database_url, settings.tenant_server_url) == (
        "postgresql+psycopg2://u@h/p", "postgresql+psycopg2://u@h/t")


def test_without_urls_the_embedded_default_serves(tmp_path):
    settings = load(environ={"QALITEL_INSTANCE_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'platform.sqlite3'}"
    assert settings.tenant_server_url == ""
