"""Absolute links for mail, built from configuration only (never from the request's Host)."""

from __future__ import annotations

from core.config import Settings


def tenant_link(settings: Settings, slug: str, path: str = "/", *,
                subdomain: bool = False) -> str:
    """The absolute URL of ``path`` (``/``-relative, inside the tenant) at tenant ``slug``.

    ``subdomain``: the link names ``<slug>.<server name>`` (when a server name is set)
    instead of ``/t/<slug>/`` under the external URL.
    """
    if not path.startswith("/"):
        raise ValueError("path must start with '/'")
    base = settings.external_url
    if subdomain and settings.server_name:
        scheme = base.split("://", 1)[0]
        return f"{scheme}://{slug}.{settings.server_name.strip('.').lower()}{path}"
    return f"{base}/t/{slug}{path}"


def platform_link(settings: Settings, path: str) -> str:
    """The absolute URL of a platform page such as ``/staff/``."""
    if not path.startswith("/"):
        raise ValueError("path must start with '/'")
    return f"{settings.external_url}{path}"
