"""
test_oauth2.py - OAuth2 logins end to end: a local authorization server
(oauth2server.py: HTTPS with the test CA, device-code, refresh_token and
client_credentials grants, rotating refresh tokens) and a Dovecot whose
oauth2 passdb asks that server (RFC 7662 introspection).

What it shows: IMAP and POP3 runs log in with XOAUTH2 and with OAUTHBEARER
(auth.mechanism forced, and "auto"); an access token that expired between
runs, or that the server refuses, is refreshed with no user action, the
rotated refresh token is stored and the old one never presented again; a
revoked grant or a missing token file fails the run with the
`mailstow oauth2 login PROFILE` hint; the device-code login completes when
the test approves (and fails cleanly when denied or expired); a
client_credentials profile signs in and archives; mailstowd killed just
before it renames a rotated token into place still logs in after restart;
a token file others can read is refused; a token endpoint whose
certificate is not trusted fails with a TLS sentence; `oauth2 status`
reports each profile; and no token, refresh token, device code or client
secret appears in any output, log line, protocol or archive file other
than the token file.
"""

import base64
import json
import os
import pathlib
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

import dovecot as harness
import mailgen
from conftest import (BUILD, MAILSTOW, REPO, Archive, error_texts,
                      require_mailstow, sha256, to_yaml)
from oauth2server import OAuth2Server

MAILSTOWD = BUILD / "mailstowd"
WAIT = 30			# seconds for anything that should happen "soon"
LOGIN_HINT = "mailstow oauth2 login %s"
SCOPE = "imap pop offline_access"


def wait_for(pred, timeout=WAIT, what="condition", step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %ss waiting for %s"
                         % (timeout, what))


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
def odc(systest_root, certs, idp_server):
    """Dovecot with XOAUTH2 and OAUTHBEARER checked by the oauth2 passdb
    against idp_server's introspection endpoint (HTTPS, test CA)."""
    d = harness.Dovecot(systest_root / "oauth2", certs=certs,
                        cert=certs.server,
                        oauth2=idp_server.introspect_url)
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def fault_so(tmp_path_factory):
    out = tmp_path_factory.mktemp("fault") / "fault.so"
    r = subprocess.run(["cc", "-shared", "-fPIC", "-o", str(out),
                        str(REPO / "tests" / "fault" / "fault.c"), "-ldl"],
                       capture_output=True, text=True)
    assert r.returncode == 0, "cannot build the fault shim: %s" % r.stderr
    return out


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


# ---- 4. device-code login -----------------------------------------------------


class Login:
    """`mailstow oauth2 login PROFILE` running in the background, its
    stdout read line by line as it comes."""

    LINE = re.compile(r"^To sign in, open (\S+) and enter the code (\S+)$")

    def __init__(self, archive, name, *pre):
        require_mailstow()
        env = {k: v for k, v in os.environ.items()
               if k != "MAILSTOW_CONFIG"}
        self.args = [str(MAILSTOW), "-c", str(archive.config)] + \
            list(pre) + ["oauth2", "login", name]
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.lines = queue.Queue()
        self.out, self.err = [], b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for ln in iter(self.proc.stdout.readline, b""):
            self.out.append(ln)
            self.lines.put(ln.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def prompt(self, timeout=WAIT):
        """(verification_uri, user_code) from the sign-in line."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                ln = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                ln = False
            if ln is None or ln is False or left <= 0:
                self.kill()
                raise AssertionError("no sign-in line within %ss\n%s"
                                     % (timeout, self.text()))
            m = self.LINE.match(ln)
            if m:
                return m.group(1), m.group(2)

    def wait(self, timeout=WAIT):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("login did not end within %ss\n%s"
                                 % (timeout, self.text()))
        self.reader.join(timeout=5)
        self.err = self.proc.stderr.read()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def stdout(self):
        return b"".join(self.out).decode("utf-8", "replace")

    @property
    def stderr(self):
        return self.err.decode("utf-8", "replace")

    def text(self):
        return "$ %s\n--- stdout\n%s\n--- stderr\n%s" % (
            " ".join(self.args), self.stdout, self.stderr)


class LoginResult:
    """A finished Login as archive.outputs keeps results (leak greps)."""

    def __init__(self, login):
        self.args = login.args
        self.out = b"".join(login.out)
        self.err = login.err


def device_login(archive, idp, name, decide, *pre):
    """Run the login; decide(user_code) plays the user; (rc, Login)."""
    lg = Login(archive, name, *pre)
    try:
        uri, code = lg.prompt()
        assert uri == idp.verification_uri, lg.text()
        decide(code)
        rc = lg.wait()
    finally:
        lg.kill()
    archive.outputs.append(LoginResult(lg))
    return rc, lg, code


def polls(idp, since=0):
    with idp.lock:
        return [r for r in idp.requests[since:]
                if r.grant_type and r.grant_type.endswith("device_code")]


def test_device_login_then_run(archive, odc, idp):
    user = mail_user(odc, 401)
    prof = oauth_profile(archive, odc, idp, user, name="dev")
    archive.write_config(prof)
    m = mark(idp)

    def approve(code):
        # Let it poll at least once first.
        wait_for(lambda: polls(idp, m), 15, "a first poll")
        idp.approve(code, user.name)
    rc, lg, code = device_login(archive, idp, "dev", approve)
    assert rc == 0, lg.text()
    path = token_path(archive, "dev")
    assert "signed in: tokens for dev stored in %s" % path in lg.stdout, \
        lg.text()
    ps = polls(idp, m)
    assert ps[-1].status == 200 and ps[-1].user == user.name
    assert any(q.error == "authorization_pending" for q in ps), \
        "approved before the first poll; the test proves less"
    assert not [q for q in ps if q.error == "slow_down"], \
        "polled faster than the interval"
    doc = read_tokens(archive, "dev")
    assert doc["refresh_token"] == ps[-1].issued_refresh
    assert doc["access_token"] == ps[-1].issued_access
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    # The stored tokens log in; no further token request.
    m2 = mark(idp)
    r, proto = run_ok(archive, "dev")
    check_archived(archive, odc, user, proto)
    assert not [q for q in idp.requests[m2:] if q.path == "/token"]


@pytest.mark.parametrize("outcome", ["denied", "expired"])
def test_device_login_denied_or_expired(archive, odc, idp, outcome):
    user = mail_user(odc, 402)
    prof = oauth_profile(archive, odc, idp, user, name="dev")
    archive.write_config(prof)

    def decide(code):
        if outcome == "denied":
            idp.deny(code)
        else:
            idp.expire_device(code)
    rc, lg, code = device_login(archive, idp, "dev", decide)
    assert rc == 1, lg.text()
    words = {"denied": r"denied|declined|refused",
             "expired": r"expired"}[outcome]
    assert re.search(words, lg.stdout + lg.stderr, re.I), lg.text()
    assert not token_path(archive, "dev").exists()


def test_client_credentials_login_and_run(archive, odc, idp):
    """App-only: no user sign-in; the grant runs at login and again when
    the token expires.  (Dovecot needs a username from introspection, so
    the test server ties this app's tokens to one mailbox.)"""
    user = mail_user(odc, 403)
    app = idp.add_client()
    idp.grant_mailbox(app, user.name)
    prof = oauth_profile(archive, odc, idp, user, name="app",
                         flow="client_credentials", client=app,
                         mechanism="xoauth2")
    archive.write_config(prof)
    m = mark(idp)
    lg = archive.cli("oauth2", "login", "app", timeout=WAIT)
    assert lg.rc == 0, str(lg)
    assert "signed in: tokens for app stored in %s" % \
        token_path(archive, "app") in lg.stdout, str(lg)
    doc = read_tokens(archive, "app")
    assert not doc.get("refresh_token")
    got = [q for q in idp.requests[m:] if q.path == "/token"]
    assert [q.grant_type for q in got] == ["client_credentials"]
    assert got[0].client_id == app.client_id
    r, proto = run_ok(archive, "app")
    check_archived(archive, odc, user, proto)
    # Expired: the run gets a new app token by itself.
    idp.expire_all_access_tokens()
    store_tokens(archive, "app", dict(doc, expires_at=int(time.time()) - 5))
    m2 = mark(idp)
    run_ok(archive, "app")
    assert [q.grant_type for q in idp.requests[m2:]
            if q.path == "/token"] == ["client_credentials"]


# ---- 5. mailstowd killed while storing a rotated token -------------------------


class Daemon:
    """mailstowd on a config; stderr to a file."""

    def __init__(self, workdir, config, env=None, tag="d"):
        self.err_path = workdir / ("mailstowd.%s.err" % tag)
        e = {k: v for k, v in os.environ.items()
             if k not in ("MAILSTOW_CONFIG", "NOTIFY_SOCKET",
                          "JOURNAL_STREAM", "WATCHDOG_USEC",
                          "WATCHDOG_PID")}
        e.update(env or {})
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(MAILSTOWD), "-c", str(config)],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=e,
                preexec_fn=harness._die_with_parent)

    @property
    def output(self):
        return self.err_path.read_bytes()

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("mailstowd ignored SIGTERM for %ss"
                                     % timeout)
        return self.proc.returncode


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="mso-", dir="/tmp")
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def daemon_config(archive, sockdir, *profiles):
    doc = {"archive": {"path": str(archive.path)},
           "daemon": {"control_socket": str(sockdir / "ctl")},
           "profiles": list(profiles)}
    archive.config.write_text("# written by test_oauth2.py\n" +
                              to_yaml(doc) + "\n")
    os.chmod(archive.config, 0o600)
    return archive.config


def run_rows(archive, profile):
    db = archive.path / "index.sqlite"
    if not db.exists():
        return []
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        return c.execute("SELECT id, status FROM runs WHERE profile = ? "
                         "ORDER BY id", (profile,)).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        c.close()


def test_daemon_killed_while_storing_rotated_token(archive, odc, idp,
                                                   fault_so, sockdir,
                                                   tmp_path):
    if not os.access(MAILSTOWD, os.X_OK):
        pytest.fail("%s is not built" % MAILSTOWD)
    user = mail_user(odc, 501)
    prof = oauth_profile(archive, odc, idp, user, name="kd",
                         schedule="every 2s")
    toks = idp.issue(user.name, lifetime=-60)	# the first run refreshes
    store_tokens(archive, "kd", toks)
    before = token_path(archive, "kd").read_bytes()
    conf = daemon_config(archive, sockdir, prof)
    log = tmp_path / "fault.log"
    m = mark(idp)
    d1 = Daemon(tmp_path, conf, tag="1", env={
        "LD_PRELOAD": str(fault_so), "FAULT_LOG": str(log),
        "FAULT_OPS": "rename,renameat", "FAULT_ACTION": "kill",
        "FAULT_NTH": "1", "FAULT_PATHS": str(archive.path / "oauth2"),
        # Under SANITIZE=1 the shim comes before ASan's runtime.
        "ASAN_OPTIONS": "verify_asan_link_order=0:" +
        os.environ.get("ASAN_OPTIONS", "")})
    try:
        rc = d1.proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        d1.proc.kill()
        d1.proc.wait()
        raise AssertionError("mailstowd was not killed storing the token"
                             "\n%s" % d1.output[-3000:].decode(
                                 errors="replace"))
    assert rc == -signal.SIGKILL, d1.output[-3000:]
    killed = log.read_text()
    assert re.search(r"^kill rename(at)? %s$" % re.escape(
        str(token_path(archive, "kd"))), killed, re.M), killed
    # The server rotated; the daemon died before the new token was in
    # place: the file still holds the old grant, whole.
    got = refreshes(idp, m)
    assert len(got) == 1 and got[0].presented == toks["refresh_token"]
    lost = got[0].issued_refresh
    assert token_path(archive, "kd").read_bytes() == before

    idp.set_lifetime(60)		# from now on every run refreshes
    m2, logpos = mark(idp), len(odc.log_text())
    d2 = Daemon(tmp_path, conf, tag="2")
    try:
        wait_for(lambda: len([1 for _, st in run_rows(archive, "kd")
                              if st == "succeeded"]) >= 2, WAIT,
                 "two succeeded runs after the restart")
        assert d2.proc.poll() is None, d2.output[-3000:]
    finally:
        rc2 = d2.stop()
    assert rc2 == 0, d2.output[-3000:]
    assert dovecot_logins(odc, user, logpos), "never logged in"
    after = refreshes(idp, m2)
    # The old refresh token still worked once (the lost one was never
    # used), then each run presented what the one before stored.
    assert after[0].presented == toks["refresh_token"] and \
        after[0].presented_state == "previous" and \
        after[0].status == 200, after[0]
    assert all(q.presented != lost for q in after)
    last = assert_chain(idp, after[0].issued_refresh, got=after[1:])
    assert read_tokens(archive, "kd")["refresh_token"] == last
    assert server_hashes(odc, user) <= archived(archive, user)
    # The daemon printed no secret, before or after the kill.
    for d in (d1, d2):
        out = d.output
        for s in idp.secrets():
            assert s.encode() not in out, "a secret in mailstowd's output"


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


# ---- 6. no secret anywhere -------------------------------------------------------


def sasl_forms(user, token):
    """What a token looks like on the wire, base64 (both mechanisms)."""
    xo = "user=%s\x01auth=Bearer %s\x01\x01" % (user, token)
    return [base64.b64encode(xo.encode()),
            base64.b64encode(("n,a=%s,\x01auth=Bearer %s\x01\x01"
                              % (user, token)).encode()),
            base64.b64encode(("auth=Bearer %s" % token).encode())]


def grep_secrets(archive, idp, users, keep, extra=()):
    """Every output so far and every archive file but `keep` (the token
    files); what leaked where."""
    needles = []
    for s in idp.secrets():
        needles.append((s[:3] + "...", s.encode()))
        if s.startswith("at-"):
            for u in users:
                needles += [("SASL form of a token", f)
                            for f in sasl_forms(u, s)]
    hay = [("stdout of %s" % r.args[3:], r.out) for r in archive.outputs]
    hay += [("stderr of %s" % r.args[3:], r.err) for r in archive.outputs]
    hay += list(extra)
    for p in archive.path.rglob("*"):
        if p.is_file() and p not in keep:
            hay.append((str(p), p.read_bytes()))
    return sorted({"%s in %s" % (n, where) for where, data in hay
                   for n, needle in needles if needle in data})


def test_no_token_or_secret_anywhere(archive, odc, idp):
    user = mail_user(odc, 801)
    pop = mail_user(odc, 802, pop3=True)
    pi = oauth_profile(archive, odc, idp, user, name="lk-imap",
                       mechanism="xoauth2")
    pp = oauth_profile(archive, odc, idp, pop, name="lk-pop",
                       protocol="pop3s", mechanism="oauthbearer")
    archive.write_config(pi, pp)
    # Sign in through the device flow, with the most verbose log.
    rc, lg, _ = device_login(archive, idp, "lk-imap",
                             lambda c: idp.approve(c, user.name), "-v")
    assert rc == 0, lg.text()
    store_tokens(archive, "lk-pop", idp.issue(pop.name, lifetime=-60))
    # Runs: fresh token, refresh before use, refresh after a refusal.
    for name in ("lk-imap", "lk-pop"):
        r = archive.cli("-v", "run", "--json", name)
        assert r.rc == 0, str(r)
    idp.expire_all_access_tokens()
    for name in ("lk-imap", "lk-pop"):
        r = archive.cli("-v", "run", "--json", name)
        assert r.rc == 0, str(r)
    # A revoked grant: a failed run, its protocol.
    idp.revoke(pop.name)
    r = archive.cli("-v", "run", "--json", "lk-pop")
    assert r.rc == 1, str(r)
    for args in (["oauth2", "status"], ["oauth2", "status", "--json"],
                 ["protocol", "--last", "lk-imap"],
                 ["protocol", "--last", "lk-pop", "--json"],
                 ["runs", "--json"],
                 ["messages", user.name, "--json"]):
        archive.cli("-v", *args)
    # The test is only worth something if tokens were actually used.
    used = [q for q in introspections(idp) if q.user in
            (user.name, pop.name)]
    assert len(used) >= 4 and refreshes(idp)
    assert any(r.err for r in archive.outputs if "-v" in r.args), \
        "-v printed no debug log at all"
    keep = {token_path(archive, "lk-imap"), token_path(archive, "lk-pop")}
    users = [user.name, pop.name]
    # The grep finds what is there: the token files hold tokens.
    assert grep_secrets(archive, idp, users, set())
    leaks = grep_secrets(archive, idp, users, keep)
    assert not leaks, leaks
