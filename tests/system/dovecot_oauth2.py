"""
dovecot_oauth2.py - what the OAuth2 system tests (test_oauth2*.py) share:
a local authorization server (oauth2server.py) and a Dovecot whose oauth2
passdb asks it, as pytest fixtures the test modules import; users with a
few messages delivered; OAuth2 profiles and their token files; what the
server and Dovecot saw (introspections, refreshes, logins); the chain of
rotated refresh tokens.
"""

import base64
import json
import os
import re
import time

import pytest

import dovecot as harness
import mailgen
from conftest import Archive, sha256
from oauth2server import OAuth2Server
# One polling loop for every system test; the test modules get it here.
from test_daemon import wait_for  # noqa: F401

WAIT = 30			# seconds for anything that should happen "soon"
LOGIN_HINT = "mailstow oauth2 login %s"
SCOPE = "imap pop offline_access"


# ---- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="module")
def idp_server(certs):
    s = OAuth2Server(certs.server, certs.ca).start()
    yield s
    s.stop()


@pytest.fixture
def idp(idp_server):
    """The authorization server, with default settings again after the
    test (tokens stay: every test uses its own users)."""
    yield idp_server
    idp_server.set_lifetime(3600)
    idp_server.interval = 1
    idp_server.device_lifetime = 600


@pytest.fixture(scope="module")
def odc(request, systest_root, certs, idp_server):
    """Dovecot with XOAUTH2 and OAUTHBEARER checked by the oauth2 passdb
    against idp_server's introspection endpoint (HTTPS, test CA).  One
    per test module, each in a directory of its own (test_oauth2_login
    -> oauth2-login), so that the modules may run in one session."""
    name = request.module.__name__.replace("test_", "", 1)
    d = harness.Dovecot(systest_root / name.replace("_", "-"), certs=certs,
                        cert=certs.server,
                        oauth2=idp_server.introspect_url)
    d.start()
    yield d
    d.stop()


# ---- helpers --------------------------------------------------------------------


def small_layout(seed):
    g = mailgen.MailGen(seed)
    return mailgen.Layout(folders={"INBOX": [g.varied() for _ in range(4)],
                                   "Sent": [g.varied() for _ in range(2)]},
                          copies=[])


def mail_user(dc, seed, pop3=False):
    """A fresh user with a few messages (delivered without a login)."""
    user = dc.add_user()
    layout = small_layout(seed)
    for folder, msgs in layout.folders.items():
        if pop3 and folder != "INBOX":
            continue
        for m in msgs:
            dc.deliver(user, folder, m.raw)
    return user


def server_hashes(dc, user, pop3=False):
    got = dc.fetch_all(user)
    return {sha256(raw) for f, msgs in got.items()
            if not pop3 or f == "INBOX" for raw in msgs.values()}


def secret_file(archive, idp, client=None):
    c = client or idp.client
    p = archive.dir / ("%s.secret" % c.client_id)
    p.write_text(c.secret + "\n")
    os.chmod(p, 0o600)
    return str(p)


def oauth_profile(archive, dc, idp, user, protocol="imaps", name=None,
                  mechanism=None, flow="refresh_token", ca=True,
                  client=None, **over):
    """A profile logging in as `user` with OAuth2 tokens from `idp`; no
    password key."""
    o = {"client_id": (client or idp.client).client_id,
         "client_secret_file": secret_file(archive, idp, client),
         "flow": flow, "token_endpoint": idp.token_url, "scope": SCOPE}
    if flow == "refresh_token":
        o["device_authorization_endpoint"] = idp.device_url
    if ca:
        o["ca_file"] = idp.ca_file
    auth = {"password_file": Archive.DELETE, "oauth2": o}
    if mechanism:
        auth["mechanism"] = mechanism
    extra = {"folders": Archive.DELETE} if protocol.startswith("pop3") \
        else {}
    extra.update(over)
    p = archive.profile(dc, user, protocol=protocol, name=name, auth=auth,
                        **extra)
    os.unlink(archive.dir / ("%s.password" % p["name"]))
    return p


def token_path(archive, name):
    return archive.path / "oauth2" / ("%s.json" % name)


def store_tokens(archive, name, toks, mode=0o600):
    """Write the token file as `mailstow oauth2 login` leaves it."""
    d = archive.path / "oauth2"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(archive.path, 0o700)
    os.chmod(d, 0o700)
    p = token_path(archive, name)
    doc = {"access_token": toks["access_token"],
           "expires_at": toks["expires_at"],
           "refresh_token": toks.get("refresh_token"),
           "scope": toks.get("scope", SCOPE),
           "updated_at": int(time.time())}
    p.write_text(json.dumps(doc) + "\n")
    os.chmod(p, mode)
    return p


def read_tokens(archive, name):
    p = token_path(archive, name)
    st = p.stat()
    assert st.st_mode & 0o777 == 0o600, "token file mode %o" % st.st_mode
    doc = json.loads(p.read_text())
    for k in ("access_token", "expires_at", "scope", "updated_at"):
        assert k in doc, "token file lacks %s: %s" % (k, sorted(doc))
    return doc


def dovecot_logins(dc, user, start=0):
    """Mechanisms of `user`'s successful logins in Dovecot's log, but for
    the harness's own (PLAIN: it reads back what the server holds)."""
    return [m for m in re.findall(r"Login: user=<%s>, method=([A-Z0-9-]+)"
                                  % re.escape(user.name),
                                  dc.log_text()[start:]) if m != "PLAIN"]


def introspections(idp, since=0):
    with idp.lock:
        return [r for r in idp.requests[since:] if r.path == "/introspect"]


def refreshes(idp, since=0):
    with idp.lock:
        return [r for r in idp.requests[since:]
                if r.grant_type == "refresh_token"]


def mark(idp):
    with idp.lock:
        return len(idp.requests)


def check_archived(archive, dc, user, proto, pop3=False):
    want = server_hashes(dc, user, pop3)
    assert proto["status"] == "succeeded", proto
    assert proto["counts"]["archived"] == len(want), proto["counts"]
    assert want <= archived(archive, user)


def archived(archive, user):
    """Hashes of `user`'s messages the archive lists."""
    return {m["hash"] for m in archive.messages(user.name)}


def run_ok(archive, name, *extra):
    r, proto = archive.run(name, *extra)
    assert r.rc == 0, str(r)
    return r, proto


def hint_in(name, *texts):
    return any(LOGIN_HINT % name in t for t in texts)


def assert_chain(idp, first_rt, since=0, got=None):
    """Every refresh since `since` (or in `got`) presented the refresh
    token that the one before it got (the first: first_rt), each as the
    current one; returns the refresh token now current."""
    rt = first_rt
    if got is None:
        got = refreshes(idp, since)
    for q in got:
        assert q.presented == rt, "presented a refresh token other than " \
            "the one stored last (state %s)" % q.presented_state
        assert q.presented_state == "current", q.presented_state
        assert q.status == 200
        rt = q.issued_refresh
    return rt


def sasl_forms(user, token):
    """What a token looks like on the wire, base64 (both mechanisms)."""
    xo = "user=%s\x01auth=Bearer %s\x01\x01" % (user, token)
    return [base64.b64encode(xo.encode()),
            base64.b64encode(("n,a=%s,\x01auth=Bearer %s\x01\x01"
                              % (user, token)).encode()),
            base64.b64encode(("auth=Bearer %s" % token).encode())]
