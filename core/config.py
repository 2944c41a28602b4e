"""Typed, frozen configuration read from ``QALITEL_*`` environment variables.

Every setting has one entry in :data:`VARIABLES`, which also feeds the README's table.
Tests patch configuration by passing overrides to :func:`load` or ``create_app``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

from core import validation


class ConfigError(RuntimeError):
    """Raised when the configuration cannot serve (e.g. production without a secret)."""


FILE_TYPES = ("pdf", "png", "jpeg", "gif", "webp", "text", "csv", "docx", "xlsx", "pptx",
              "odt", "ods")
"""Every kind of attached file ``core.filetypes`` recognises by content."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    instance_dir: Path = Path("instance")
    database_url: str = ""
    secret_key: str = ""
    secret_key_fallbacks: tuple[str, ...] = ()
    encryption_key: str = ""
    tenant_server_url: str = ""
    server_name: str = ""
    external_url: str = ""
    trusted_hosts: tuple[str, ...] = ()
    https: bool = False
    engine_cache_size: int = 16
    dormant_engine_cache_size: int = 1000
    tenant_pool_size: int = 2
    tenant_pool_timeout: float = 10.0
    platform_pool_size: int = 2
    migrate_connection_budget: int = 8
    template_database: str = "qalitel_tenant_template"
    pg_name_prefix: str = "qt_"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "qalitel@localhost"
    ratelimit_storage_uri: str = "memory://"
    ratelimit_key_prefix: str = "qalitel"
    remember_days: int = 30
    maintenance_default_hours: float = 2.0
    maintenance_max_hours: float = 4.0
    maintenance_pending_hours: float = 12.0
    reset_link_minutes: int = 60
    audit_witness_dir: Path | None = None
    file_max_bytes: int = 20 * 1024 * 1024
    file_max_count: int = 20
    file_types: tuple[str, ...] = FILE_TYPES
    backup_targets: tuple[str, ...] = ()
    backup_recipient: str = ""
    backup_identity: Path | None = None
    backup_retention_days: int = 30
    closure_grace_days: int = 0
    export_days: int = 7
    login_history_days: int = 180
    backup_s3_endpoint: str = ""
    pg_bin_dir: Path | None = None
    default_timezone: str = "Europe/Paris"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def sqlite_tenant_dir(self) -> Path:
        return self.instance_dir / "tenants"

    @property
    def witness_dir(self) -> Path:
        """Where the access-log witness files go (``maintenance.witness``)."""
        return self.audit_witness_dir or self.instance_dir / "audit-witness"


# name, attribute, type, default shown in the README, description
VARIABLES: list[tuple[str, str, type, str, str]] = [
    ("QALITEL_ENV", "env", str, "development",
     "`production` refuses to start without an explicit secret and encryption key."),
    ("QALITEL_INSTANCE_DIR", "instance_dir", Path, "instance",
     "Folder of the embedded default: platform SQLite file, tenant SQLite files, generated keys."),
    ("QALITEL_DATABASE_URL", "database_url", str, "sqlite:///<instance>/platform.sqlite3",
     "SQLAlchemy URL of the platform database (SQLite or PostgreSQL); `postgresql://` and "
     "`postgres://` mean psycopg2, an explicit `postgresql+driver://` is kept."),
    ("QALITEL_SECRET_KEY", "secret_key", str, "generated into the instance folder",
     "Signs session and preference cookies."),
    ("QALITEL_SECRET_KEY_FALLBACKS", "secret_key_fallbacks", tuple, "(none)",
     "Comma-separated previous secret keys still accepted while rotating."),
    ("QALITEL_ENCRYPTION_KEY", "encryption_key", str, "generated into the instance folder",
     "Fernet key encrypting tenant role passwords and server DSNs at rest."),
    ("QALITEL_TENANT_SERVER_URL", "tenant_server_url", str, "(none: SQLite tenants)",
     "Admin DSN of the PostgreSQL server new tenants are created on, e.g. "
     "`postgresql://postgres@127.0.0.1:5432/postgres` (`postgres://` works too, as in "
     "`servers add`)."),
    ("QALITEL_SERVER_NAME", "server_name", str, "(none)",
     "When set, `<slug>.<server name>` also reaches a tenant."),
    ("QALITEL_EXTERNAL_URL", "external_url", str, "http://127.0.0.1:5000 (required in production)",
     "Public base URL (scheme and host) every link in a mail is built from; never the "
     "request's `Host`."),
    ("QALITEL_TRUSTED_HOSTS", "trusted_hosts", tuple,
     "the external URL's host and `.<server name>` in production; any in development",
     "Comma-separated `Host` values the app answers (Flask's `TRUSTED_HOSTS`); others get 400."),
    ("QALITEL_HTTPS", "https", bool, "0", "Served behind HTTPS: `Secure` cookies and HSTS."),
    ("QALITEL_ENGINE_CACHE_SIZE", "engine_cache_size", int, "16",
     "Tenant engines kept open per process (LRU)."),
    ("QALITEL_DORMANT_ENGINE_CACHE_SIZE", "dormant_engine_cache_size", int, "1000",
     "Evicted tenant engines kept per process without connections (LRU, 0 to 100000; "
     "about 10 KiB each): a known tenant then costs one connect, not an engine build."),
    ("QALITEL_TENANT_POOL_SIZE", "tenant_pool_size", int, "2",
     "Connections per tenant engine (no overflow)."),
    ("QALITEL_TENANT_POOL_TIMEOUT", "tenant_pool_timeout", float, "10",
     "Seconds a request waits for a tenant connection."),
    ("QALITEL_PLATFORM_POOL_SIZE", "platform_pool_size", int, "2",
     "Connections to the platform database per process (PostgreSQL)."),
    ("QALITEL_MIGRATE_CONNECTION_BUDGET", "migrate_connection_budget", int, "8",
     "Most tenant databases `tenants migrate` works on at once."),
    ("QALITEL_TEMPLATE_DATABASE", "template_database", str, "qalitel_tenant_template",
     "Name of the pre-migrated PostgreSQL template database."),
    ("QALITEL_PG_NAME_PREFIX", "pg_name_prefix", str, "qt_",
     "Prefix of tenant database and role names on PostgreSQL."),
    ("QALITEL_SMTP_HOST", "smtp_host", str, "127.0.0.1", "SMTP server for outgoing mail."),
    ("QALITEL_SMTP_PORT", "smtp_port", int, "25", "SMTP port."),
    ("QALITEL_SMTP_USER", "smtp_user", str, "(none)", "SMTP login, if any."),
    ("QALITEL_SMTP_PASSWORD", "smtp_password", str, "(none)", "SMTP password, if any."),
    ("QALITEL_SMTP_STARTTLS", "smtp_starttls", bool, "0", "Use STARTTLS."),
    ("QALITEL_MAIL_FROM", "mail_from", str, "qalitel@localhost", "Sender address."),
    ("QALITEL_RATELIMIT_STORAGE_URI", "ratelimit_storage_uri", str, "memory://",
     "Where sign-in attempts are counted: `memory://` (one process: gunicorn refuses "
     "several workers with it) or `redis://127.0.0.1:6379/0` (shared by every worker)."),
    ("QALITEL_RATELIMIT_KEY_PREFIX", "ratelimit_key_prefix", str, "qalitel",
     "Prefix of the throttle's Redis keys (installations sharing one Redis use distinct ones)."),
    ("QALITEL_REMEMBER_DAYS", "remember_days", int, "30",
     "Lifetime of the optional 'keep me signed in' cookie (at most 365)."),
    ("QALITEL_MAINTENANCE_DEFAULT_HOURS", "maintenance_default_hours", float, "2",
     "Duration of a maintenance window when a request names none, in hours."),
    ("QALITEL_MAINTENANCE_MAX_HOURS", "maintenance_max_hours", float, "4",
     "Longest maintenance window an engineer may request, in hours."),
    ("QALITEL_MAINTENANCE_PENDING_HOURS", "maintenance_pending_hours", float, "12",
     "Hours a maintenance request waits for the client's decision before it expires."),
    ("QALITEL_RESET_LINK_MINUTES", "reset_link_minutes", int, "60",
     "Lifetime of an emailed password-reset link, in minutes (single use)."),
    ("QALITEL_AUDIT_WITNESS_DIR", "audit_witness_dir", Path, "<instance>/audit-witness",
     "Folder of the append-only witness files of the maintenance access logs; put it outside "
     "the platform database's reach (another disk or host, `chattr +a`)."),
    ("QALITEL_FILE_MAX_BYTES", "file_max_bytes", int, "20971520 (20 MB)",
     "Largest file attached to a non-conformity or an action, in bytes."),
    ("QALITEL_FILE_MAX_COUNT", "file_max_count", int, "20",
     "Most files attached to one non-conformity or one action."),
    ("QALITEL_FILE_TYPES", "file_types", tuple, ",".join(FILE_TYPES),
     "Comma-separated kinds of file accepted, recognised by their content (not their name): "
     "any of " + ", ".join(f"`{kind}`" for kind in FILE_TYPES) + "."),
    ("QALITEL_BACKUP_TARGETS", "backup_targets", tuple, "(none: `backup run` refuses)",
     "Comma-separated backup targets, every archive written to each: at least two absolute "
     "folders on different media, and optionally `s3://bucket/prefix`."),
    ("QALITEL_BACKUP_RECIPIENT", "backup_recipient", str, "(none: `backup run` refuses)",
     "age public key (`age1…`) every backup archive is encrypted to; the hosts that write "
     "backups cannot read them."),
    ("QALITEL_BACKUP_IDENTITY", "backup_identity", Path, "(none)",
     "age identity file (`AGE-SECRET-KEY-1…`) that `backup verify --deep` and restores "
     "decrypt with; keep it off the web hosts."),
    ("QALITEL_BACKUP_RETENTION_DAYS", "backup_retention_days", int, "30",
     "Days backup copies are kept on every target (0: until the next prune)."),
    ("QALITEL_CLOSURE_GRACE_DAYS", "closure_grace_days", int, "0",
     "Days a closed tenant's database and files are kept (`tenants reopen` works meanwhile) "
     "before they are dropped; 0: at once."),
    ("QALITEL_EXPORT_DAYS", "export_days", int, "7",
     "Days a finished data export (a client's full export, a user's own data) can be "
     "downloaded; its file is then deleted (1 to 90)."),
    ("QALITEL_LOGIN_HISTORY_DAYS", "login_history_days", int, "180",
     "Days each sign-in is kept in the login history (1 to 3650); older ones are deleted by "
     "the `retention` job."),
    ("QALITEL_BACKUP_S3_ENDPOINT", "backup_s3_endpoint", str, "(AWS)",
     "Endpoint URL of an S3-compatible service for `s3://` targets; credentials come from "
     "the usual `AWS_*` variables."),
    ("QALITEL_PG_BIN_DIR", "pg_bin_dir", Path, "(found on `PATH`)",
     "Folder of `pg_dump` and `pg_restore` (Debian: `postgresql-client-15`, matching the "
     "server's major version). Unset, when `PATH` leads to Debian's `pg_wrapper`, the "
     "server's `/usr/lib/postgresql/<major>/bin` is used."),
    ("QALITEL_DEFAULT_TIMEZONE", "default_timezone", str, "Europe/Paris",
     "IANA time zone dates and times are shown in (pages and mail) unless a person chose "
     "another on the preferences page."),
]

def settings() -> Settings:
    """The current app's settings: the one way code reaches configuration."""
    from flask import current_app

    return current_app.extensions[EXTENSION]


EXTENSION = "qalitel_settings"

_TRUE = {"1", "true", "yes", "on"}


def _convert(kind: type, raw: str) -> Any:
    if kind is bool:
        return raw.strip().lower() in _TRUE
    if kind is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind is Path:
        return Path(raw)
    return kind(raw)


def _read_or_create(path: Path, make: Any) -> str:
    """Read a generated key from the instance folder, creating it (mode 0600) once."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


PG_DRIVER = "postgresql+psycopg2"
_PLAIN_PG = re.compile(r"^(postgres|postgresql)://", re.IGNORECASE)


def normalize_database_url(url: str) -> str:
    """A database URL as operators write it, made explicit: ``postgresql://`` and
    ``postgres://`` name psycopg2 (installed; SQLAlchemy 2.1 would pick psycopg 3, which is
    not). Explicit drivers (``postgresql+…://``) and other databases are left alone."""
    return _PLAIN_PG.sub(PG_DRIVER + "://", url.strip(), count=1)


DEV_EXTERNAL_URL = "http://127.0.0.1:5000"


def _external_url(settings: Settings) -> str:
    raw = settings.external_url.strip()
    if not raw:
        if settings.production:
            raise ConfigError("QALITEL_EXTERNAL_URL is required in production (links in mail "
                              "are built from it)")
        return DEV_EXTERNAL_URL
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or parts.username or parts.password \
            or parts.path not in ("", "/"):
        raise ConfigError(f"QALITEL_EXTERNAL_URL={raw!r}: give a scheme and host only, such as "
                          "https://qalitel.example.com")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _trusted_hosts(settings: Settings, external_url: str) -> tuple[str, ...]:
    if settings.trusted_hosts:
        return tuple(host.lower() for host in settings.trusted_hosts)
    if not settings.production:
        return ()
    hosts = [urlsplit(external_url).hostname or ""]
    if settings.server_name:
        hosts.append("." + settings.server_name.strip(".").lower())
    return tuple(hosts)


def load(overrides: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from the environment, then apply ``overrides`` (by attribute)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, attr, kind, _default, _doc in VARIABLES:
        raw = environ.get(name)
        if raw not in (None, ""):
            try:
                values[attr] = _convert(kind, raw)
            except ValueError as exc:
                raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from exc
    values.update(overrides or {})
    settings = Settings(**values)
    instance = Path(settings.instance_dir).resolve()
    changes: dict[str, Any] = {
        "instance_dir": instance,
        "database_url": normalize_database_url(settings.database_url)
        or f"sqlite:///{instance / 'platform.sqlite3'}",
        "tenant_server_url": normalize_database_url(settings.tenant_server_url)}
    if not settings.secret_key:
        if settings.production:
            raise ConfigError("QALITEL_SECRET_KEY is required in production")
        changes["secret_key"] = _read_or_create(instance / "secret_key",
                                                lambda: secrets.token_urlsafe(48))
    if not settings.encryption_key:
        if settings.production:
            raise ConfigError("QALITEL_ENCRYPTION_KEY is required in production")
        changes["encryption_key"] = _read_or_create(instance / "encryption_key",
                                                    lambda: Fernet.generate_key().decode())
    changes["external_url"] = _external_url(settings)
    changes["trusted_hosts"] = _trusted_hosts(settings, changes["external_url"])
    if not 1 <= settings.remember_days <= 365:
        raise ConfigError("QALITEL_REMEMBER_DAYS must be between 1 and 365")
    if not 0 < settings.maintenance_default_hours <= settings.maintenance_max_hours <= 24 \
            or not 0 < settings.maintenance_pending_hours <= 7 * 24:
        raise ConfigError("maintenance hours: 0 < default <= max <= 24, 0 < pending <= 168")
    if not 5 <= settings.reset_link_minutes <= 7 * 24 * 60:
        raise ConfigError("QALITEL_RESET_LINK_MINUTES must be between 5 and 10080")
    if not 0 <= settings.backup_retention_days <= 3650:
        raise ConfigError("QALITEL_BACKUP_RETENTION_DAYS must be between 0 and 3650")
    if not 0 <= settings.closure_grace_days <= 365:
        raise ConfigError("QALITEL_CLOSURE_GRACE_DAYS must be between 0 and 365")
    if not 1 <= settings.export_days <= 90:
        raise ConfigError("QALITEL_EXPORT_DAYS must be between 1 and 90")
    if not 1 <= settings.login_history_days <= 3650:
        raise ConfigError("QALITEL_LOGIN_HISTORY_DAYS must be between 1 and 3650")
    if settings.engine_cache_size < 1 or settings.tenant_pool_size < 1:
        raise ConfigError("engine cache size and tenant pool size must be at least 1")
    if not 0 <= settings.dormant_engine_cache_size <= 100_000:
        raise ConfigError("QALITEL_DORMANT_ENGINE_CACHE_SIZE must be between 0 and 100000")
    if not 1 <= settings.file_max_bytes <= 2**31 - 1 or not 1 <= settings.file_max_count <= 1000:
        raise ConfigError("QALITEL_FILE_MAX_BYTES must be between 1 and 2147483647, "
                          "QALITEL_FILE_MAX_COUNT between 1 and 1000")
    if not validation.is_time_zone(settings.default_timezone):
        raise ConfigError(f"QALITEL_DEFAULT_TIMEZONE={settings.default_timezone!r} is not a "
                          "known time zone (an IANA name such as Europe/Paris)")
    changes["file_types"] = tuple(dict.fromkeys(kind.lower() for kind in settings.file_types))
    unknown = sorted(set(changes["file_types"]) - set(FILE_TYPES))
    if unknown or not changes["file_types"]:
        raise ConfigError(f"QALITEL_FILE_TYPES: unknown kind(s) {', '.join(unknown)}; choose "
                          f"among {', '.join(FILE_TYPES)}" if unknown else
                          "QALITEL_FILE_TYPES names no kind of file")
    # PostgreSQL truncates names past 63 bytes; prefix + a 40-character slug must fit.
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,22}", settings.pg_name_prefix):
        raise ConfigError("QALITEL_PG_NAME_PREFIX must be 1 to 23 lowercase letters, digits "
                          "or '_', starting with a letter or '_'")
    return dataclasses.replace(settings, **changes)
