"""
test_oauth2_daemon.py - mailstowd killed (by the fault shim) just before
it renames a rotated refresh token into place: the token file still holds
the old grant, whole, and after a restart the daemon logs in again and
every later run presents what the one before stored.
"""

import os
import pathlib
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile

import pytest

import dovecot as harness
from conftest import BUILD, REPO, to_yaml

# Fixtures (idp_server, idp, odc) are found by name in the module that
# requests them: imported, not called.
from dovecot_oauth2 import (  # noqa: F401
    LOGIN_HINT, SCOPE, WAIT, archived, assert_chain, check_archived,
    dovecot_logins, hint_in, idp, idp_server, introspections, mail_user,
    mark, odc, oauth_profile, read_tokens, refreshes, run_ok, sasl_forms,
    server_hashes, store_tokens, token_path, wait_for)

MAILSTOWD = BUILD / "mailstowd"


@pytest.fixture(scope="module")
def fault_so(tmp_path_factory):
    out = tmp_path_factory.mktemp("fault") / "fault.so"
    r = subprocess.run(["cc", "-shared", "-fPIC", "-o", str(out),
                        str(REPO / "tests" / "fault" / "fault.c"), "-ldl"],
                       capture_output=True, text=True)
    assert r.returncode == 0, "cannot build the fault shim: %s" % r.stderr
    return out


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
    archive.config.write_text("# written by test_oauth2_daemon.py\n" +
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
