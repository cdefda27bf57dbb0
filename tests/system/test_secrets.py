"""
test_secrets.py - the password stays secret.  A config holding an inline
password, or a password file, that others can read is refused with a
message that names the file and the fix; so is a password file reached
through a symlink owned by someone else.  With the most verbose logging
(-v) no output of a run - stdout, stderr, the protocol (JSON and text),
the run list, every file of the archive (SQLite index, WAL, lock) and
/proc/PID/cmdline and environ sampled while it runs - contains the password,
its base64, or the base64 of the SASL PLAIN string "\\0user\\0password", for
every way the client can log in, for a refused login, and for a server that
echoes the credentials back.
"""

import base64
import json
import os
import pathlib

import pytest

import hostile
from hostile import (Account, FakeImap, Folder, HostileServer, run_measured,
                     sasl_plain)

MSGS = [b"Subject: secret %d\r\nMessage-ID: <s%d@hostile>\r\n\r\nbody\r\n"
        % (i, i) for i in range(2)]
# Characters LOGIN must quote, so the quoted form is a distinct needle;
# the random token is found in any escaped form (JSON, str_escape).
TOKEN = os.urandom(8).hex()
PASSWORD = 'S3cr3t-"quoted"\\back-%s' % TOKEN


def server():
    return FakeImap([Folder("INBOX", MSGS)])


def needles(user, password):
    pw = password.encode()
    quoted = b'"' + pw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return {
        "password": pw,
        "base64(password)": base64.b64encode(pw),
        "base64(\\0user\\0password)": sasl_plain(user, password),
        "base64(user\\0password)": base64.b64encode(user.encode() + b"\0" +
                                                    pw),
        "LOGIN-quoted password": quoted,
        "JSON-escaped password": json.dumps(password)[1:-1].encode(),
        "backslash-escaped password": pw.replace(b"\\", b"\\\\"),
        "the password's random part": password.rsplit("-", 1)[-1].encode(),
    }


def grep_all(archive, user, password, extra=()):
    """Every output and every archive file; returns what leaked where."""
    found = []
    hay = [("stdout of %s" % r.args[3:], r.out) for r in archive.outputs]
    hay += [("stderr of %s" % r.args[3:], r.err) for r in archive.outputs]
    hay += list(extra)
    if archive.path.exists():
        for p in archive.path.rglob("*"):
            if p.is_file():
                hay.append((str(p), p.read_bytes()))
    for what, data in hay:
        for name, n in needles(user, password).items():
            if n in data:
                found.append("%s in %s" % (name, what))
    return found


# ---- files others can read --------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_password_file_readable_by_others_refused(archive, certs, mode):
    srv = server()
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs)
        pwfile = prof["auth"]["password_file"]
        os.chmod(pwfile, mode)
        archive.write_config(prof)
        r, proto = archive.run(prof["name"])
        chk = archive.cli("check")
    assert r.rc == 1, str(r)
    assert proto["status"] == "failed"
    text = " ".join(hostile.event_texts(proto, "error"))
    assert pwfile in text and "chmod 600 %s" % pwfile in text, text
    assert not hs.conns, "connected although the password file is unsafe"
    assert chk.rc != 0, str(chk)
    assert pwfile in chk.stderr and "chmod 600" in chk.stderr, str(chk)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_inline_password_in_readable_config_refused(archive, certs, mode):
    srv = server()
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs)
        prof["auth"] = {"user": "alice", "password": PASSWORD}
        archive.write_config(prof, mode=mode)
        r = archive.cli("run", "--json", prof["name"])
        chk = archive.cli("check")
        # The same file, private: accepted.
        os.chmod(archive.config, 0o600)
        ok, proto = archive.run(prof["name"])
    cfg = str(archive.config)
    for res in (r, chk):
        assert res.rc == 2, str(res)
        assert cfg in res.stderr and "chmod 600" in res.stderr, str(res)
    assert ok.rc == 0 and proto["counts"]["archived"] == len(MSGS), str(ok)
    # Checked after the good run, whose output then says why if it failed.
    assert len(hs.conns) == 1, "the refused runs connected"
    assert not grep_all(archive, "alice", PASSWORD)


def test_password_symlink_owned_by_someone_else_refused(archive, certs,
                                                        tmp_path):
    srv = server()
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs)
        target = pathlib.Path(prof["auth"]["password_file"])
        link = tmp_path / "pw-link"
        link.symlink_to(target)
        os.lchown(link, 65534, 65534)
        assert os.lstat(link).st_uid == 65534
        prof["auth"]["password_file"] = str(link)
        archive.write_config(prof)
        r, proto = archive.run(prof["name"])
        chk = archive.cli("check")
        # Our own link to the same file is fine.
        os.lchown(link, os.getuid(), os.getgid())
        ok, proto2 = archive.run(prof["name"])
    assert r.rc == 1 and proto["status"] == "failed", str(r)
    text = " ".join(hostile.event_texts(proto, "error"))
    assert str(link) in text and "symlink" in text, text
    assert "65534" in text and "replace it" in text, text
    assert chk.rc != 0 and str(link) in chk.stderr, str(chk)
    assert len(hs.conns) == 1, "connected through a foreign symlink"
    assert ok.rc == 0, str(ok)


# ---- nothing leaks, at the most verbose log level -----------------------------------


class Sampler:
    """Reads /proc/PID/cmdline and environ while mailstow runs."""

    def __init__(self):
        self.data = []

    def __call__(self, pid):
        for f in ("cmdline", "environ"):
            try:
                with open("/proc/%d/%s" % (pid, f), "rb") as fh:
                    self.data.append(("/proc/PID/%s" % f, fh.read()))
            except OSError:
                pass


class SlowList(FakeImap):
    """Lingers a little after LIST, so that /proc is sampled mid-run."""

    def on_list(self, tag, rest):
        self.conn.sleep(0.3)
        FakeImap.on_list(self, tag, rest)


AUTH_STYLES = {
    "sasl-ir": b"IMAP4rev1 AUTH=PLAIN SASL-IR LITERAL+",
    "sasl-continuation": b"IMAP4rev1 AUTH=PLAIN LITERAL+",
    "login": b"IMAP4rev1 LITERAL+",
}


@pytest.mark.parametrize("style", sorted(AUTH_STYLES))
def test_no_secret_in_any_output_verbose(archive, certs, style):
    acct = Account("alice@example.org", PASSWORD)
    srv = SlowList([Folder("INBOX", MSGS)], caps=AUTH_STYLES[style])
    sampler = Sampler()
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, account=acct,
                               name="alice")
        archive.write_config(prof)
        r, rss = run_measured(archive, "-v", "run", "--json", prof["name"],
                              sample=sampler)
        for args in (["-v", "protocol", "--last", prof["name"], "--json"],
                     ["-v", "protocol", "--last", prof["name"]],
                     ["-v", "runs", "--json"],
                     ["-v", "messages", acct.name, "--json"]):
            archive.cli(*args)
    assert r.rc == 0, str(r)
    assert r.err, "-v printed no debug log at all"
    assert sampler.data, "the process was never sampled"
    # The server did get the credential (else this test proves nothing).
    got = hs.received()
    want = {"sasl-ir": sasl_plain(acct.name, PASSWORD),
            "sasl-continuation": sasl_plain(acct.name, PASSWORD),
            "login": needles(acct.name, PASSWORD)["LOGIN-quoted password"]}
    assert want[style] in got, "credential not sent as expected"
    leaks = grep_all(archive, acct.name, PASSWORD, sampler.data)
    assert not leaks, leaks


@pytest.mark.parametrize("echo", [
    pytest.param(False, id="plain-NO"),
    pytest.param(True, id="echoing"),
])
def test_no_secret_after_refused_login(archive, certs, echo):
    """A refused login - also from a server that repeats what it got in
    its NO text - leaves no secret in the protocol or any output."""
    acct = Account("bob", PASSWORD)

    class S(FakeImap):
        def on_authenticate(self, tag, rest):
            text = b"[AUTHENTICATIONFAILED] wrong credentials"
            if echo:
                text += b" for " + rest.split(b" ")[-1]
            self.conn.send(tag + b" NO " + text + b"\r\n")
    srv = S([Folder("INBOX", MSGS)])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, account=acct)
        archive.write_config(prof)
        r, _ = run_measured(archive, "-v", "run", "--json", prof["name"])
        archive.cli("protocol", "--last", prof["name"])
    assert r.rc == 1, str(r)
    assert "AUTHENTICATIONFAILED" in r.stdout
    leaks = grep_all(archive, acct.name, PASSWORD)
    assert not leaks, leaks


def test_cmdline_never_holds_the_password(archive, certs):
    """Nothing in how mailstow is started carries the secret: the
    password comes from a file, argv holds only the config path."""
    sampler = Sampler()
    srv = SlowList([Folder("INBOX", MSGS)])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs,
                               account=Account("carol", PASSWORD))
        archive.write_config(prof)
        r, _ = run_measured(archive, "run", prof["name"], sample=sampler)
    assert r.rc == 0, str(r)
    cmdlines = [d for what, d in sampler.data if what.endswith("cmdline")]
    assert cmdlines and all(str(archive.config).encode() in c
                            for c in cmdlines if c)
    assert not grep_all(archive, "carol", PASSWORD, sampler.data)


# ---- POP3 -------------------------------------------------------------------------

from hostile import FakePop3  # noqa: E402

POP3_STYLES = {
    "sasl-plain": (b"USER", b"UIDL", b"SASL PLAIN"),
    "user-pass": (b"USER", b"UIDL"),
}


@pytest.mark.parametrize("style", sorted(POP3_STYLES))
def test_pop3_no_secret_in_any_output_verbose(archive, certs, style):
    acct = Account("dave@example.org", PASSWORD)
    srv = FakePop3(MSGS, caps=POP3_STYLES[style])
    sampler = Sampler()
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="pop3s",
                               account=acct, name="dave")
        archive.write_config(prof)
        r, _ = run_measured(archive, "-v", "run", "--json", "dave",
                            sample=sampler)
        archive.cli("-v", "protocol", "--last", "dave")
        archive.cli("-v", "messages", acct.name, "--json")
    assert r.rc == 0, str(r)
    got = hs.received()
    assert (sasl_plain(acct.name, PASSWORD) if style == "sasl-plain" else
            b"PASS " + PASSWORD.encode()) in got, "credential not sent"
    leaks = grep_all(archive, acct.name, PASSWORD, sampler.data)
    assert not leaks, leaks


@pytest.mark.parametrize("echo", [
    pytest.param(False, id="plain-ERR"),
    pytest.param(True, id="echoing"),
])
def test_pop3_no_secret_after_refused_login(archive, certs, echo):
    acct = Account("erin", PASSWORD)

    class S(FakePop3):
        def on_pass(self, rest):
            self.conn.send(b"-ERR [AUTH] wrong password" +
                           (b" " + rest if echo else b"") + b"\r\n")
    srv = S(MSGS, caps=(b"USER", b"UIDL"))
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="pop3s",
                               account=acct)
        archive.write_config(prof)
        r, _ = run_measured(archive, "-v", "run", "--json", prof["name"])
        archive.cli("protocol", "--last", prof["name"])
    assert r.rc == 1, str(r)
    assert "wrong password" in r.stdout
    leaks = grep_all(archive, acct.name, PASSWORD)
    assert not leaks, leaks
