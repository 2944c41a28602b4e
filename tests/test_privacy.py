"""The privacy page: reachable signed out, linked from every page's footer, listing each
cookie with its purpose and lifetime and the policy's commitments, in French and English."""

from __future__ import annotations

import re

from tests.conftest import login, provision

# Sentences of SCOQI's privacy policy the page paraphrases (it must not copy them).
SEED = """
The personal data that can be entered into QALITEL applications is the responsibility of the
client company using the application that provides the database. SCOQI does not use the data
entered in the client databases in any way. Access to customer databases as part of a
maintenance intervention is done after approval of the client company.
A login cookie is created to memorize the connection data as well as some user preferences in
order to offer the user an environment similar to his last login. This login cookie is not
deleted when the software is disconnected (in order to be able to offer the user the user's
preferences again) and has a lifetime of 1 year.
All data left by the various sites managed by SCOQI are not transmitted or transferred to
third-party companies for any purpose whatsoever.
Backups of QALITEL databases and associated data (SAAS mode) are logged over 30 rolling days.
In both cases, in case of account deletion, the effective deletion of all user data will occur
within 30 days after the sliding backup period.
Vous pouvez également demander la rectification / suppression des données personnelles vous
concernant. Cela ne prend pas en compte les données stockées à des fins administratives,
légales ou pour des raisons de sécurité.
Your data is stored on secure servers that have strict backup procedures on different physical
media.
"""

FRENCH = ["qalitel_session", "qalitel_remember", "qalitel_prefs", "30 jours", "Un an",
          "sa propre base de données", "ne fait aucun usage",
          "approuvée au préalable par votre administrateur", "journalisés",
          "30 jours glissants", "plus d'un support", "supprimées au plus tard 30 jours",
          "rectifier ou supprimer", "raisons légales ou de sécurité", "transmis à des tiers",
          "conservé lorsque vous vous déconnectez", "M'oublier sur cet appareil",
          "jamais votre mot de passe"]
ENGLISH = ["qalitel_session", "qalitel_remember", "qalitel_prefs", "30 days", "One year",
           "its own database", "no use whatsoever", "approved beforehand", "logged",
           "30 rolling days", "more than one storage medium", "deleted at the latest 30 days",
           "corrected or deleted", "legal or security reasons", "third parties",
           "kept when you sign out", "Forget me on this device", "never your password"]


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def test_privacy_page_signed_out_in_french_and_english(shared_two_tenants):
    two_tenants = shared_two_tenants  # read-only: the module's world
    client = two_tenants.app.test_client()
    french = client.get("/t/alpha/privacy")
    assert french.status_code == 200
    body = text(french).replace("\u00a0", " ")
    for fragment in FRENCH:
        assert fragment in body, fragment
    english = client.get("/t/alpha/privacy", headers={"Accept-Language": "en"})
    body = text(english)
    for fragment in ENGLISH:
        assert fragment in body, fragment
    platform = client.get("/privacy", headers={"Accept-Language": "en"})
    assert platform.status_code == 200 and "qalitel_prefs" in text(platform)


def test_remember_lifetime_follows_the_setting(make_app, backend, password_hash):
    app = make_app(backend, remember_days=14)
    provision(app, "alpha", password_hash)
    client = app.test_client()
    assert "14 jours" in text(client.get("/t/alpha/privacy"))
    assert "14 days" in text(client.get("/t/alpha/privacy", headers={"Accept-Language": "en"}))


def test_privacy_link_in_every_footer(shared_two_tenants):
    two_tenants = shared_two_tenants  # read-only: the module's world
    client = two_tenants.app.test_client()
    pages = {"/": "/privacy", "/privacy": "/privacy", "/t/nosuch/login": "/privacy",
             "/t/alpha/login": "/t/alpha/privacy", "/t/alpha/privacy": "/t/alpha/privacy"}
    for url, link in pages.items():
        footer = client.get(url).get_data(as_text=True).split('<footer class="site-footer">')
        assert len(footer) == 2 and f'href="{link}"' in footer[1], url
    login(client, "alpha", two_tenants.a.user_email)
    for url in ("/t/alpha/", "/t/alpha/records/", "/t/alpha/preferences"):
        footer = client.get(url).get_data(as_text=True).split('<footer class="site-footer">')
        assert len(footer) == 2 and 'href="/t/alpha/privacy"' in footer[1], url
        assert 'href="/t/alpha/preferences"' in footer[1], url


def test_policy_is_in_our_own_words(shared_two_tenants):
    """No run of eight words of the seed policy appears verbatim on the page."""
    two_tenants = shared_two_tenants  # read-only: the module's world
    seed_words = re.findall(r"[\w']+", SEED.lower())
    runs = {" ".join(seed_words[i:i + 8]) for i in range(len(seed_words) - 7)}
    assert len(runs) > 150
    client = two_tenants.app.test_client()
    for lang in ("en", "fr"):
        page = text(client.get("/t/alpha/privacy", headers={"Accept-Language": lang}))
        words = re.findall(r"[\w']+", page.lower())
        copied = {" ".join(words[i:i + 8]) for i in range(len(words) - 7)} & runs
        assert not copied, copied
