"""
test_journal_secrets.py - what mailstowd at its most verbose (-v) writes
to the journal, taken from the native journal protocol on a socket the
test owns (MAILSTOW_JOURNAL_SOCKET).

1. Server text cannot forge a journal line: a hostile IMAP server puts
   CR, LF, ESC sequences, BEL and DEL into [ALERT] text, untagged and in
   the tagged NO that refuses the login (whose words reach the journal in
   the run's failure line).  No field of any entry holds CR, LF, ESC or
   another control byte, no entry starts with the forged text, and the
   same holds for the output (stderr and stdout) of `mailstow -v run`.
2. No secret in any journal field: IMAP (LOGIN, SASL PLAIN) and POP3
   (USER/PASS, SASL PLAIN) logins with a password, servers that echo the
   credentials back in their refusal, and OAuth2 (XOAUTH2, OAUTHBEARER,
   token refresh with the client secret) against Dovecot and the test
   authorization server.  Every field of every entry, the daemon's stderr,
   the protocol, the archive files and /proc/PID/cmdline and environ are
   grepped for the password, its base64 forms, the SASL PLAIN base64,
   every token and its SASL forms, and the client secret.
"""

import base64
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

import dovecot as harness
import hostile
from conftest import BUILD, run_mailstow, to_yaml
from dovecot_oauth2 import (idp, idp_server, introspections,  # noqa: F401
                            mail_user, oauth_profile, refreshes, sasl_forms,
                            store_tokens)
from hostile import Account, FakeImap, FakePop3, Folder, HostileServer
from test_daemon import Datagrams, ctl_request, journal_fields
from test_secrets import needles

MAILSTOWD = BUILD / "mailstowd"
WAIT = 30
MSGS = [b"Subject: journal %d\r\nMessage-ID: <j%d@hostile>\r\n\r\nbody\r\n"
        % (i, i) for i in range(2)]
# Bytes that must never reach a journal field or a terminal raw.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# ---- mailstowd -v with its journal on a socket we own ---------------------------


class VerboseDaemon:
    """`mailstowd -v -c CONFIG` with NOTIFY_SOCKET and the journal socket;
    stderr kept in a file; /proc/PID/cmdline and environ sampled every
    20 ms for as long as it runs."""

    def __init__(self, sockdir, config):
        self.notify = Datagrams(sockdir / "notify")
        self.journal = Datagrams(sockdir / "journal")
        self.err_path = sockdir / "mailstowd.err"
        e = {k: v for k, v in os.environ.items()
             if k not in ("MAILSTOW_CONFIG", "JOURNAL_STREAM",
                          "WATCHDOG_USEC", "WATCHDOG_PID")}
        e["NOTIFY_SOCKET"] = self.notify.path
        e["MAILSTOW_JOURNAL_SOCKET"] = self.journal.path
        self.proc_data = []
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(MAILSTOWD), "-v", "-c", str(config)],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=e,
                preexec_fn=harness._die_with_parent)
        self.sampling = True
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()

    def wait_ready(self):
        self.notify.wait(lambda d: b"READY=1" in d.split(b"\n"), WAIT,
                         "READY=1 from mailstowd")

    def _sample(self):
        while self.sampling and self.proc.poll() is None:
            for f in ("cmdline", "environ"):
                try:
                    with open("/proc/%d/%s" % (self.proc.pid, f), "rb") as fh:
                        self.proc_data.append(("/proc/PID/%s" % f, fh.read()))
                except OSError:
                    pass
            time.sleep(0.02)

    @property
    def stderr(self):
        return self.err_path.read_bytes()

    def datagrams(self):
        return self.journal.poll()

    def entries(self):
        return [journal_fields(d) for d in self.datagrams()]

    def run(self, ctl, name):
        """Start a run of `name` over the control socket; its status."""
        out = ctl_request(ctl, "run " + name, finals=("done", "error"))
        assert out and out[-1].startswith("done "), out
        return out[-1].split()[2]

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("mailstowd ignored SIGTERM")
        self.close()
        return rc

    def close(self):
        self.sampling = False
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.sampler.join(timeout=5)
        self.notify.close()
        self.journal.close()
        for marker in (b"AddressSanitizer", b"LeakSanitizer",
                       b"runtime error:"):
            assert marker not in self.stderr, self.stderr[-4000:]


@pytest.fixture
def sockdir():
    # AF_UNIX paths are short; pytest's tmp_path can be too long.
    d = tempfile.mkdtemp(prefix="mjs-", dir="/tmp")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemon(sockdir):
    started = []

    def start(config):
        d = VerboseDaemon(sockdir, config)
        started.append(d)
        d.wait_ready()
        return d
    yield start
    for d in started:
        d.close()


def daemon_config(archive, ctl, *profiles):
    doc = {"archive": {"path": str(archive.path)},
           "daemon": {"control_socket": str(ctl)},
           "profiles": list(profiles)}
    archive.config.write_text("# written by test_journal_secrets.py\n" +
                              to_yaml(doc) + "\n")
    os.chmod(archive.config, 0o600)
    return archive.config


def debug_lines(entries):
    """Entries at debug priority: proof that -v really was in effect."""
    return [e for e in entries if e.get("PRIORITY") == "7"]


# ---- 1. [ALERT] text cannot forge a journal line --------------------------------


MARK = "alertmark"
TAILS = {
    "CR": b"\rforged: mailstowd: profile x run 1: succeeded",
    "LF": b"\nforged: mailstowd: profile x run 1: succeeded",
    "CRLF-CR": b"\r\n\rforged line",
    "clear-screen": b"\x1b[2J\x1b[Hforged screen",
    "title-bel-del": b"\x1b]0;forged title\x07 bell \x7f del \xc3\x28",
}


class AlertImap(FakeImap):
    """Sends `* OK [ALERT] MARK<tail>` before it answers the login, or
    (refuse=True) refuses the login with `NO [ALERT] MARK<tail>`."""

    def __init__(self, tail, refuse):
        FakeImap.__init__(self, [Folder("INBOX", MSGS)])
        self.tail = tail
        self.refuse = refuse

    def on_authenticate(self, tag, rest):
        text = b"[ALERT] " + MARK.encode() + self.tail + b"\r\n"
        if self.refuse:
            self.logins += 1
            self.conn.send(tag + b" NO " + text)
        else:
            self.conn.send(b"* OK " + text)
            FakeImap.on_authenticate(self, tag, rest)


def assert_no_forged_entry(entries):
    for e in entries:
        for k, v in e.items():
            assert not CONTROL.search(v), "raw control byte in %s: %r" % (k, v)
        assert not e.get("MESSAGE", "").lstrip().startswith("forged"), e


def assert_no_forged_text(data, what):
    for bad in (b"\r", b"\x1b", b"\x07", b"\x00", b"\x7f"):
        assert bad not in data, "raw %r in %s:\n%r" % (bad, what, data)
    for line in data.split(b"\n"):
        # A line of ours starts with "mailstow"; the forged text must
        # never begin a line of its own.
        assert not line.lstrip().startswith(b"forged"), (what, line)


@pytest.mark.parametrize("tail", sorted(TAILS))
def test_alert_cannot_forge_a_journal_line(archive, certs, daemon, sockdir,
                                           tail):
    ctl = sockdir / "ctl"
    untagged = AlertImap(TAILS[tail], refuse=False)
    refusing = AlertImap(TAILS[tail], refuse=True)
    with HostileServer(untagged, tls="implicit", cert=certs.server) as hu, \
            HostileServer(refusing, tls="implicit", cert=certs.server) as hr:
        pu = hostile.profile(archive, hu, certs, name="alert")
        pr = hostile.profile(archive, hr, certs, name="refused",
                             account=Account("bob"))
        d = daemon(daemon_config(archive, ctl, pu, pr))
        st_u = d.run(ctl, "alert")
        st_r = d.run(ctl, "refused")
        assert d.stop() == 0
        # The same server text through the command line.
        cli = [run_mailstow("-c", archive.config, "-v", "run", n)
               for n in ("alert", "refused")]
    assert untagged.logins >= 1 and refusing.logins >= 1, "never logged in"
    assert st_r == "failed", st_r
    assert st_u in ("succeeded", "failed"), st_u
    ents = d.entries()
    assert debug_lines(ents), "-v gave no debug entries"
    # The refusal's words reached the journal (escaped), or this test
    # would pass without ever putting server text there.
    assert any(MARK in e.get("MESSAGE", "") for e in ents), \
        [e.get("MESSAGE") for e in ents]
    assert_no_forged_entry(ents)
    assert_no_forged_text(d.stderr, "mailstowd's stderr")
    for r in cli:
        assert r.rc in (0, 1), str(r)
        assert_no_forged_text(r.err, "stderr of %s" % r.args[3:])
        assert_no_forged_text(r.out, "stdout of %s" % r.args[3:])
    # The CLI showed the alert (and the refusal) at all.
    assert all(MARK.encode() in r.out + r.err for r in cli), \
        [str(r) for r in cli]


# ---- 2. no secret in any journal field --------------------------------------------


TOKEN = os.urandom(8).hex()
PASSWORD = 'J0urn4l-"quoted"\\back-%s' % TOKEN


class EchoImap(FakeImap):
    """Refuses the login and repeats what it got in its NO text."""

    def on_authenticate(self, tag, rest):
        self.logins += 1
        self.conn.send(tag + b" NO [AUTHENTICATIONFAILED] wrong: " +
                       rest.split(b" ")[-1] + b"\r\n")

    def on_login(self, tag, rest):
        self.logins += 1
        self.conn.send(tag + b" NO [AUTHENTICATIONFAILED] wrong: " + rest +
                       b"\r\n")


class EchoPop3(FakePop3):
    def on_pass(self, rest):
        self.logins += 1
        self.conn.send(b"-ERR [AUTH] wrong password " + rest + b"\r\n")


# name: (server, protocol, the needle the server must have received,
# whether the login is refused)
def password_servers():
    login = b"IMAP4rev1 LITERAL+"
    sasl = b"IMAP4rev1 AUTH=PLAIN SASL-IR LITERAL+"
    pop_user, pop_sasl = (b"USER", b"UIDL"), (b"USER", b"UIDL", b"SASL PLAIN")
    return {
        "imap-login": (FakeImap([Folder("INBOX", MSGS)], caps=login),
                       "imaps", "LOGIN-quoted password", False),
        "imap-sasl": (FakeImap([Folder("INBOX", MSGS)], caps=sasl),
                      "imaps", "base64(\\0user\\0password)", False),
        "imap-sasl-echo": (EchoImap([Folder("INBOX", MSGS)], caps=sasl),
                           "imaps", "base64(\\0user\\0password)", True),
        "imap-login-echo": (EchoImap([Folder("INBOX", MSGS)], caps=login),
                            "imaps", "LOGIN-quoted password", True),
        "pop3-user": (FakePop3(MSGS, caps=pop_user), "pop3s", "password",
                      False),
        "pop3-sasl": (FakePop3(MSGS, caps=pop_sasl), "pop3s",
                      "base64(\\0user\\0password)", False),
        "pop3-echo": (EchoPop3(MSGS, caps=pop_user), "pop3s", "password",
                      True),
    }


@pytest.fixture(scope="module")
def odc(systest_root, certs, idp_server):  # noqa: F811
    """Dovecot with the oauth2 passdb, as dovecot_oauth2.odc, in its own
    directory so that both modules may run in one session."""
    d = harness.Dovecot(systest_root / "oauth2-journal", certs=certs,
                        cert=certs.server, oauth2=idp_server.introspect_url)
    d.start()
    yield d
    d.stop()


def grep(hay, named):
    return sorted({"%s in %s" % (name, where) for where, data in hay
                   for name, n in named if n in data})


def journal_hay(d):
    """Each journal entry whole, and each of its fields decoded."""
    hay = [("journal datagram", raw) for raw in d.datagrams()]
    for e in d.entries():
        for k, v in e.items():
            hay.append(("journal field %s" % k, v.encode()))
    return hay + [("mailstowd's stderr", d.stderr)] + d.proc_data


def run_password_profiles(archive, certs, daemon, sockdir, names):
    """Each profile of `names` (keys of password_servers()) run once by
    mailstowd -v; then the protocol of each through the CLI at -v.
    Returns what leaked where."""
    ctl = sockdir / "ctl"
    servers = {n: v for n, v in password_servers().items() if n in names}
    named, profs, hss = [], [], {}
    try:
        for name, (srv, proto, _, _) in sorted(servers.items()):
            hss[name] = HostileServer(srv, tls="implicit", cert=certs.server,
                                      lifetime=60).start()
            acct = Account("%s@example.org" % name, PASSWORD)
            profs.append(hostile.profile(archive, hss[name], certs,
                                         protocol=proto, account=acct,
                                         name=name))
            named += [(k + " of " + name, v)
                      for k, v in needles(acct.name, PASSWORD).items()]
        d = daemon(daemon_config(archive, ctl, *profs))
        status = {n: d.run(ctl, n) for n in sorted(servers)}
        assert d.stop() == 0
        for n in sorted(servers):
            archive.cli("-v", "protocol", "--last", n, "--json")
            archive.cli("-v", "protocol", "--last", n)
        archive.cli("-v", "runs", "--json")
    finally:
        for hs in hss.values():
            hs.stop()
    for name, (srv, _, sent, refused) in servers.items():
        assert status[name] == ("failed" if refused else "succeeded"), \
            (name, status[name])
        # The credential really crossed the wire, else this proves nothing.
        acct = "%s@example.org" % name
        assert needles(acct, PASSWORD)[sent] in hss[name].received(), name
    ents = d.entries()
    assert debug_lines(ents), "-v gave no debug entries"
    if any(v[3] for v in servers.values()):
        assert any("wrong" in e.get("MESSAGE", "") for e in ents), \
            "no refusal text reached the journal"
    hay = journal_hay(d)
    hay += [("stdout of %s" % r.args[3:], r.out) for r in archive.outputs]
    hay += [("stderr of %s" % r.args[3:], r.err) for r in archive.outputs]
    for p in archive.path.rglob("*"):
        if p.is_file():
            hay.append((str(p), p.read_bytes()))
    assert any(w.endswith("cmdline") for w, _ in d.proc_data), \
        "/proc/PID/cmdline never sampled"
    # The grep finds what is there: the password files hold it.
    assert grep([("password file", (archive.dir / ("%s.password" % n))
                  .read_bytes()) for n in servers], named)
    return grep(hay, named)


def test_no_password_in_journal_fields(archive, certs, daemon, sockdir):
    names = set(password_servers()) - {"imap-login-echo"}
    leaks = run_password_profiles(archive, certs, daemon, sockdir, names)
    assert not leaks, leaks


def test_echoed_login_quoted_password_not_in_journal(archive, certs, daemon,
                                                     sockdir):
    leaks = run_password_profiles(archive, certs, daemon, sockdir,
                                  {"imap-login-echo"})
    assert not leaks, leaks


def test_no_token_or_client_secret_in_journal_fields(archive, odc, idp,
                                                     daemon, sockdir):
    ctl = sockdir / "ctl"
    user = mail_user(odc, 901)
    pop = mail_user(odc, 902, pop3=True)
    pi = oauth_profile(archive, odc, idp, user, name="jo-imap",
                       mechanism="xoauth2")
    pp = oauth_profile(archive, odc, idp, pop, name="jo-pop",
                       protocol="pop3s", mechanism="oauthbearer")
    # Expired access tokens: the first runs refresh (refresh token and
    # client secret on the wire) before they log in.
    store_tokens(archive, "jo-imap", idp.issue(user.name, lifetime=-60))
    store_tokens(archive, "jo-pop", idp.issue(pop.name, lifetime=-60))
    d = daemon(daemon_config(archive, ctl, pi, pp))
    got = [d.run(ctl, n) for n in ("jo-imap", "jo-pop")]
    # Tokens the server refuses: refreshed after the refusal.
    idp.expire_all_access_tokens()
    got += [d.run(ctl, n) for n in ("jo-imap", "jo-pop")]
    assert d.stop() == 0
    assert got == ["succeeded"] * 4, got
    for n in ("jo-imap", "jo-pop"):
        archive.cli("-v", "protocol", "--last", n, "--json")
    archive.cli("-v", "oauth2", "status", "--json")
    used = [q for q in introspections(idp) if q.user in
            (user.name, pop.name)]
    assert len(used) >= 4 and len(refreshes(idp)) >= 4, "tokens unused"
    assert debug_lines(d.entries()), "-v gave no debug entries"
    named = []
    for s in idp.secrets():
        named.append((s[:3] + "...", s.encode()))
        if s.startswith("at-"):
            for u in (user.name, pop.name):
                named += [("SASL form of a token", f)
                          for f in sasl_forms(u, s)]
    secret = idp.client.secret
    named += [("client secret", secret.encode()),
              ("base64(client secret)", base64.b64encode(secret.encode()))]
    hay = journal_hay(d)
    hay += [("stdout of %s" % r.args[3:], r.out) for r in archive.outputs]
    hay += [("stderr of %s" % r.args[3:], r.err) for r in archive.outputs]
    keep = {archive.path / "oauth2" / "jo-imap.json",
            archive.path / "oauth2" / "jo-pop.json"}
    for p in archive.path.rglob("*"):
        if p.is_file() and p not in keep:
            hay.append((str(p), p.read_bytes()))
    # The grep finds what is there: the token files hold tokens.
    assert grep([(str(p), p.read_bytes()) for p in keep], named)
    leaks = grep(hay, named)
    assert not leaks, leaks
