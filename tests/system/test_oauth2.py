"""
test_oauth2.py - OAuth2 logins end to end: a local authorization server
(oauth2server.py: HTTPS with the test CA, device-code, refresh_token and
client_credentials grants, rotating refresh tokens) and a Dovecot whose
oauth2 passdb asks that server (RFC 7662 introspection); both, and the
helpers, are in dovecot_oauth2.py.

What it shows: IMAP and POP3 runs log in with XOAUTH2 and with OAUTHBEARER
(auth.mechanism forced, and "auto"); an access token that expired between
runs, or that the server refuses, is refreshed with no user action, the
rotated refresh token is stored and the old one never presented again; a
revoked grant or a missing token file fails the run with the
`mailstow oauth2 login PROFILE` hint; a token file others can read is
refused; a token endpoint whose certificate is not trusted fails with a
TLS sentence; `oauth2 status` reports each profile.  The logins
themselves and the secrets they handle: test_oauth2_login.py; mailstowd
killed while storing a rotated token: test_oauth2_daemon.py.
"""

import re
import time

import pytest

from conftest import error_texts

# Fixtures (idp_server, idp, odc) are found by name in the module that
# requests them: imported, not called.
from dovecot_oauth2 import (  # noqa: F401
    LOGIN_HINT, SCOPE, WAIT, archived, assert_chain, check_archived,
    dovecot_logins, hint_in, idp, idp_server, introspections, mail_user,
    mark, odc, oauth_profile, read_tokens, refreshes, run_ok, sasl_forms,
    server_hashes, store_tokens, token_path, wait_for)


# ---- 1. XOAUTH2 and OAUTHBEARER, IMAP and POP3 -----------------------------------


@pytest.mark.parametrize("protocol", ["imaps", "pop3s"])
@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
def test_run_logs_in_with_token(archive, odc, idp, protocol, mechanism):
    pop3 = protocol == "pop3s"
    user = mail_user(odc, 101, pop3)
    prof = oauth_profile(archive, odc, idp, user, protocol=protocol,
                         mechanism=mechanism)
    toks = idp.issue(user.name)
    store_tokens(archive, prof["name"], toks)
    archive.write_config(prof)
    m, logpos = mark(idp), len(odc.log_text())
    r, proto = run_ok(archive, prof["name"])
    check_archived(archive, odc, user, proto, pop3)
    assert dovecot_logins(odc, user, logpos) == [mechanism.upper()], \
        odc.log_text()[logpos:][-3000:]
    # The stored token was still good: no token request, and Dovecot
    # checked exactly that token.
    assert not [q for q in idp.requests[m:] if q.path == "/token"]
    seen = introspections(idp, m)
    assert seen and all(q.presented == toks["access_token"] and
                        q.presented_state == "active" for q in seen)
    assert read_tokens(archive, prof["name"])["refresh_token"] == \
        toks["refresh_token"]


def test_mechanism_auto_prefers_oauthbearer(archive, odc, idp):
    user = mail_user(odc, 102)
    prof = oauth_profile(archive, odc, idp, user)		# no mechanism
    store_tokens(archive, prof["name"], idp.issue(user.name))
    archive.write_config(prof)
    logpos = len(odc.log_text())
    r, proto = run_ok(archive, prof["name"])
    check_archived(archive, odc, user, proto)
    assert dovecot_logins(odc, user, logpos) == ["OAUTHBEARER"]


# ---- 2. expiry, refresh, rotation -----------------------------------------------



def test_access_token_expired_between_runs_is_refreshed(archive, odc, idp):
    user = mail_user(odc, 201)
    prof = oauth_profile(archive, odc, idp, user)
    # The last login was long ago: the access token has expired (by the
    # clock, for the file and the server alike).
    toks = idp.issue(user.name, lifetime=-60)
    store_tokens(archive, prof["name"], toks)
    archive.write_config(prof)
    m = mark(idp)
    r, proto = run_ok(archive, prof["name"])
    check_archived(archive, odc, user, proto)
    got = refreshes(idp, m)
    assert len(got) == 1, [(q.presented_state, q.status) for q in got]
    rt2 = assert_chain(idp, toks["refresh_token"], m)
    # Refreshed BEFORE logging in: Dovecot never saw the expired token.
    assert all(q.presented != toks["access_token"]
               for q in introspections(idp, m))
    doc = read_tokens(archive, prof["name"])
    assert doc["refresh_token"] == rt2 != toks["refresh_token"]
    assert doc["access_token"] == got[0].issued_access
    assert abs(doc["expires_at"] - (time.time() + 3600)) < 120, doc
    # Next run: the stored token is fresh, nothing to refresh.
    m2 = mark(idp)
    run_ok(archive, prof["name"])
    assert not refreshes(idp, m2)
    # Expired again: the rotated token is presented, never the first.
    idp.expire_all_access_tokens()
    store_tokens(archive, prof["name"],
                 dict(doc, expires_at=int(time.time()) - 60))
    m3 = mark(idp)
    run_ok(archive, prof["name"])
    assert len(refreshes(idp, m3)) == 1
    assert_chain(idp, rt2, m3)
    assert all(q.presented != toks["refresh_token"]
               for q in refreshes(idp, m)[1:])


def test_short_lived_tokens_rotate_every_run(archive, odc, idp):
    """Access tokens that live one minute (less than the refresh margin):
    every run refreshes, and each presents the refresh token the run
    before stored, never an older one."""
    user = mail_user(odc, 202)
    prof = oauth_profile(archive, odc, idp, user, protocol="pop3s",
                         mechanism="xoauth2")
    idp.set_lifetime(60)
    toks = idp.issue(user.name)
    store_tokens(archive, prof["name"], toks)
    archive.write_config(prof)
    m = mark(idp)
    stored = []
    for i in range(3):
        r, proto = run_ok(archive, prof["name"])
        if i == 0:
            check_archived(archive, odc, user, proto, pop3=True)
        else:
            assert proto["counts"]["archived"] == 0, proto["counts"]
        stored.append(read_tokens(archive, prof["name"])["refresh_token"])
    last = assert_chain(idp, toks["refresh_token"], m)
    assert len(refreshes(idp, m)) >= 3
    assert stored[-1] == last
    assert len(set(stored)) == 3 and toks["refresh_token"] not in stored


# Dovecot 2.3's error challenge for a refused token ("+ base64(JSON)"):
# XOAUTH2 {"status":"401","schemes":"bearer","scope":"mail"},
# OAUTHBEARER {"status":"invalid_token"}; a pattern for how the protocol
# may quote its status, raw or escaped.
REFUSAL_STATUS = {"xoauth2": r"status\W{0,6}401\b",
                  "oauthbearer": r"status\W{0,6}invalid_token"}


@pytest.mark.parametrize("protocol,mechanism", [
    ("imaps", "oauthbearer"), ("imaps", "xoauth2"), ("pop3s", "xoauth2")])
def test_refused_token_refreshed_once(archive, odc, idp, protocol,
                                      mechanism):
    """The server stops accepting a token the file still calls valid
    (revoked session, clock skew): the server's error challenge is
    answered and its JSON recorded in the protocol, the run refreshes
    once, logs in with the new token and stores the rotated refresh
    token."""
    pop3 = protocol == "pop3s"
    user = mail_user(odc, 203, pop3)
    prof = oauth_profile(archive, odc, idp, user, protocol=protocol,
                         mechanism=mechanism)
    toks = idp.issue(user.name)
    store_tokens(archive, prof["name"], toks)
    archive.write_config(prof)
    run_ok(archive, prof["name"])
    idp.expire_all_access_tokens()
    m, logpos = mark(idp), len(odc.log_text())
    r, proto = run_ok(archive, prof["name"])
    assert proto["counts"]["failed"] == 0
    texts = [e["text"] for e in proto["events"]]
    seen = introspections(idp, m)
    assert seen[0].presented == toks["access_token"] and \
        seen[0].presented_state == "expired", seen
    got = refreshes(idp, m)
    assert len(got) == 1
    rt2 = assert_chain(idp, toks["refresh_token"], m)
    assert seen[-1].presented == got[0].issued_access
    assert dovecot_logins(odc, user, logpos) == [mechanism.upper()]
    doc = read_tokens(archive, prof["name"])
    assert doc["refresh_token"] == rt2 and \
        doc["access_token"] == got[0].issued_access
    # Once more: the stored (rotated) refresh token is the one presented.
    idp.expire_all_access_tokens()
    m2 = mark(idp)
    run_ok(archive, prof["name"])
    assert_chain(idp, rt2, m2)
    assert len(refreshes(idp, m2)) == 1
    # Checked last, so that the rest has been seen to hold.
    assert any(re.search(REFUSAL_STATUS[mechanism], t) for t in texts), \
        "the server's JSON error (/%s/) is not in the protocol: %s" % (
            REFUSAL_STATUS[mechanism], texts)


# ---- 3. revoked grant, no token file ----------------------------------------------


def test_revoked_refresh_token_fails_naming_login(archive, odc, idp):
    user = mail_user(odc, 301)
    prof = oauth_profile(archive, odc, idp, user, name="rev")
    toks = idp.issue(user.name)
    store_tokens(archive, prof["name"], toks)
    archive.write_config(prof)
    idp.revoke(toks["refresh_token"])		# the user withdrew consent
    logpos = len(odc.log_text())
    r, proto = archive.run("rev")
    assert r.rc == 1, str(r)
    assert proto["status"] == "failed" and \
        proto["counts"]["archived"] == 0, proto
    texts = error_texts(proto)
    assert hint_in("rev", *texts), texts
    assert dovecot_logins(odc, user, logpos) == []
    assert not archived(archive, user)
    # The stored protocol says it too.
    p = archive.cli("protocol", "--last", "rev")
    assert p.rc == 0 and LOGIN_HINT % "rev" in p.stdout, str(p)


def test_missing_token_file_fails_naming_login(archive, odc, idp):
    user = mail_user(odc, 302)
    prof = oauth_profile(archive, odc, idp, user, name="never")
    archive.write_config(prof)
    m = mark(idp)
    r, proto = archive.run("never")
    assert r.rc == 1 and proto["status"] == "failed", str(r)
    assert hint_in("never", *error_texts(proto)), error_texts(proto)
    assert mark(idp) == m, "asked the server without any token"
    assert not odc.login_attempted(user)


# ---- token file permissions, untrusted endpoint, status -------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_token_file_readable_by_others_refused(archive, odc, idp, mode):
    user = mail_user(odc, 601)
    prof = oauth_profile(archive, odc, idp, user, name="loose")
    store_tokens(archive, "loose", idp.issue(user.name), mode=mode)
    archive.write_config(prof)
    m = mark(idp)
    r, proto = archive.run("loose")
    assert r.rc == 1 and proto["status"] == "failed", str(r)
    path = str(token_path(archive, "loose"))
    text = " ".join(error_texts(proto))
    assert path in text and re.search(r"chmod 600|readable", text), text
    assert mark(idp) == m, "used a token file others can read"
    assert not odc.login_attempted(user)


def test_untrusted_token_endpoint_fails_with_tls_sentence(archive, odc, idp):
    user = mail_user(odc, 602)
    prof = oauth_profile(archive, odc, idp, user, name="noca", ca=False)
    store_tokens(archive, "noca", idp.issue(user.name, lifetime=-60))
    archive.write_config(prof)
    m = mark(idp)
    n_tls = len(idp.tls_failures)
    r, proto = archive.run("noca")
    assert r.rc == 1 and proto["status"] == "failed", str(r)
    text = " ".join(error_texts(proto))
    assert re.search(r"certificate|TLS", text, re.I), text
    assert "token" in text.lower() or "oauth2" in text.lower(), text
    assert mark(idp) == m, "sent a request over an untrusted connection"
    assert len(idp.tls_failures) > n_tls, "never tried the endpoint"
    assert not odc.login_attempted(user)


def test_status_reports_each_profile(archive, odc, idp):
    users = [mail_user(odc, 700 + i) for i in range(3)]
    profs = [oauth_profile(archive, odc, idp, u, name=n)
             for u, n in zip(users, ("st-none", "st-valid", "st-expired"))]
    app = idp.add_client()
    profs.append(oauth_profile(archive, odc, idp, users[0], name="st-app",
                               flow="client_credentials", client=app))
    plain = archive.profile(odc, users[0], name="st-password")
    valid = idp.issue(users[1].name)
    store_tokens(archive, "st-valid", valid)
    store_tokens(archive, "st-expired", idp.issue(users[2].name,
                                                  lifetime=-60))
    archive.write_config(*profs, plain)
    r = archive.cli("oauth2", "status", "--json")
    assert r.rc == 0, str(r)
    got = {e["profile"]: e for e in r.json()}
    assert set(got) == {"st-none", "st-valid", "st-expired", "st-app"}, got
    for e in got.values():
        assert set(e) >= {"profile", "flow", "state", "access_expires_at",
                          "has_refresh_token", "updated_at"}, e
    assert got["st-none"]["state"] == "none"
    assert got["st-valid"]["state"] == "valid"
    assert got["st-valid"]["has_refresh_token"] is True
    assert got["st-valid"]["flow"] == "refresh_token"
    assert got["st-expired"]["state"] == "expired"
    assert got["st-app"]["flow"] == "client_credentials"
    assert got["st-app"]["state"] == "none"
    t = r.stdout
    text = archive.cli("oauth2", "status")
    assert text.rc == 0, str(text)
    for n in ("st-none", "st-valid", "st-expired", "st-app"):
        assert n in text.stdout, str(text)
    assert "st-password" not in text.stdout + t
    for s in idp.secrets():
        assert s not in t and s not in text.stdout
