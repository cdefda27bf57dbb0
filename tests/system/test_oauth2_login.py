"""
test_oauth2_login.py - `mailstow oauth2 login` against the local
authorization server of dovecot_oauth2.py: the device-code login completes
when the test approves (and fails cleanly when denied or expired); a
client_credentials profile signs in and archives; and no token, refresh
token, device code or client secret appears in any output, log line,
protocol or archive file other than the token file.
"""

import os
import queue
import re
import subprocess
import threading
import time

import pytest

from conftest import MAILSTOW, require_mailstow

# Fixtures (idp_server, idp, odc) are found by name in the module that
# requests them: imported, not called.
from dovecot_oauth2 import (  # noqa: F401
    LOGIN_HINT, SCOPE, WAIT, archived, assert_chain, check_archived,
    dovecot_logins, hint_in, idp, idp_server, introspections, mail_user,
    mark, odc, oauth_profile, read_tokens, refreshes, run_ok, sasl_forms,
    server_hashes, store_tokens, token_path, wait_for)


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


# ---- 6. no secret anywhere -------------------------------------------------------


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
