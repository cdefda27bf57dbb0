"""
test_hostile_tls.py - TLS and STARTTLS against a hostile IMAP server
(hostile.py): every way a server can try to get the password without
proper TLS must end in an "abort" - the connection is closed before any
credential or mailbox command is sent, the run is `failed`, exit 1, with an
error event that names the reason - and other profiles of the same call are
unaffected.  Covers the STARTTLS downgrades and injections (USENIX Security
2021, "Why TLS is better without STARTTLS"), LOGINDISABLED, REFERRAL,
certificate checks (self-signed, unknown root, wrong name, expired, NUL in
the name, a switched certificate against a pin), handshake stalls, TLS 1.0
and plaintext on an implicit-TLS port.
"""

import ssl
import time

import pytest

import hostile
from conftest import sha256
from hostile import (Account, FakeImap, Folder, HostileServer, Stopped,
                     assert_aborted, credentials_sent, last_protocol)

MSGS = [b"Subject: tls %d\r\nMessage-ID: <tls%d@hostile>\r\n\r\nbody %d\r\n"
        % (i, i, i) for i in range(2)]


@pytest.fixture(scope="module")
def hcerts(certs, tmp_path_factory):
    """The harness PKI plus expired / unknown-root / NUL-name certs."""
    extra = hostile.make_hostile_certs(tmp_path_factory.mktemp("hpki"),
                                       certs.ca, certs.ca.replace(
                                           "ca.pem", "ca.key"))
    return certs, extra


def starttls_server(cls=FakeImap, **kw):
    kw.setdefault("starttls", True)
    return cls([Folder("INBOX", MSGS)], **kw)


def run_ok(archive, prof):
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 0, str(r)
    assert proto["status"] == "succeeded", str(r)
    return proto


# ---- the baseline: the fake server is good enough to archive from -------------


@pytest.mark.parametrize("protocol", ["imaps", "imap+starttls"])
def test_baseline_archives(archive, certs, protocol):
    srv = starttls_server()
    with HostileServer(srv, tls="implicit" if protocol == "imaps" else None,
                       cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol=protocol)
        proto = run_ok(archive, prof)
    assert proto["counts"]["archived"] == len(MSGS)
    assert set(archive.files()) == {sha256(m) for m in MSGS}
    if protocol == "imap+starttls":
        lines = hs.conns[0].lines
        i = [k for k, l in enumerate(lines) if b"STARTTLS" in l][0]
        assert any(b"CAPABILITY" in l for l in lines[i + 1:]), \
            "no CAPABILITY after TLS: %r" % lines
    assert not hs.errors


# ---- STARTTLS refused or subverted ------------------------------------------------


def test_starttls_not_offered(archive, certs):
    srv = starttls_server(starttls=False)
    with HostileServer(srv, cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="imap+starttls")
        assert_aborted(archive, prof, hs, ["starttls"])
    assert "STARTTLS" not in hs.commands()


@pytest.mark.parametrize("answer", [
    b"{tag} NO STARTTLS is broken today\r\n",
    b"{tag} BAD STARTTLS unknown\r\n",
    b"+ go ahead\r\n",
    b"\x16\x03\x01garbage \x00\xff\x1b[2J\r\n",
    b"* BYE bye\r\n",
], ids=["NO", "BAD", "continuation", "garbage", "BYE"])
def test_starttls_answer_refused(archive, certs, answer):
    class S(FakeImap):
        def on_starttls(self, tag, rest):
            self.conn.send(answer.replace(b"{tag}", tag))
            if answer.startswith(b"* BYE"):
                self.conn.close()
            self.conn.wait_closed(10)
            raise Stopped()
    with HostileServer(starttls_server(S), cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="imap+starttls")
        assert_aborted(archive, prof, hs,
                       ["starttls", "continuation", "syntax", "parse",
                        "closed", "invalid", "protocol", "bye"])


def test_preauth_greeting_on_starttls_profile(archive, certs):
    srv = starttls_server(greeting=b"* PREAUTH [CAPABILITY IMAP4rev1 "
                          b"STARTTLS] logged in already\r\n")
    with HostileServer(srv, cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="imap+starttls")
        assert_aborted(archive, prof, hs, ["preauth"], allowed=("LOGOUT",))


@pytest.mark.parametrize("extra", [
    b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n",
    b"a9 OK LOGIN injected\r\n",
])
def test_plaintext_after_starttls_ok_same_segment(archive, certs, extra):
    class S(FakeImap):
        def on_starttls(self, tag, rest):
            self.conn.send(tag + b" OK begin TLS\r\n" + extra)
            try:
                self.conn.starttls(timeout=5)
            except (ssl.SSLError, OSError):
                raise Stopped()
            self.conn.wait_closed(5)
            raise Stopped()
    with HostileServer(starttls_server(S), cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="imap+starttls")
        assert_aborted(archive, prof, hs,
                       ["injection", "before the tls handshake",
                        "after its starttls"])


def test_untagged_capability_before_tls_has_no_effect(archive, certs):
    """Before TLS the server offers AUTH=PLAIN (also in an untagged
    CAPABILITY just ahead of the STARTTLS answer); after TLS it offers
    plain LOGIN only.  The client must ask CAPABILITY again after TLS and
    use only that list: LOGIN, never AUTHENTICATE."""
    class S(FakeImap):
        def capabilities(self):
            if self.conn.tls:
                return b"IMAP4rev1"
            return b"IMAP4rev1 STARTTLS AUTH=PLAIN SASL-IR"

        def on_starttls(self, tag, rest):
            self.conn.send(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n"
                           b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] x\r\n")
            time.sleep(0.05)
            FakeImap.on_starttls(self, tag, rest)
    srv = starttls_server(S, greeting=b"* OK [CAPABILITY IMAP4rev1 STARTTLS "
                          b"AUTH=PLAIN SASL-IR] hello\r\n")
    with HostileServer(srv, cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="imap+starttls")
        proto = run_ok(archive, prof)
    assert proto["counts"]["archived"] == len(MSGS)
    cmds = hs.commands()
    i = cmds.index("STARTTLS")
    assert "CAPABILITY" in cmds[i + 1:], "capabilities not asked again " \
        "after TLS: %r" % cmds
    assert cmds[i + 1:].index("CAPABILITY") < cmds[i + 1:].index("LOGIN")
    assert "AUTHENTICATE" not in cmds, \
        "a capability learnt before TLS was used: %r" % cmds
    assert not hs.errors


def test_capabilities_differ_after_tls_logindisabled(archive, certs):
    """Pre-TLS list offers AUTH=PLAIN; post-TLS list says LOGINDISABLED
    and no AUTH=PLAIN: no way to log in, so nothing may be sent."""
    class S(FakeImap):
        def capabilities(self):
            if self.conn.tls:
                return b"IMAP4rev1 LOGINDISABLED"
            return b"IMAP4rev1 STARTTLS AUTH=PLAIN SASL-IR"
    with HostileServer(starttls_server(S), cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="imap+starttls")
        assert_aborted(archive, prof, hs, ["logindisabled"])


@pytest.mark.parametrize("protocol", ["imaps", "imap"])
def test_logindisabled_never_sends_login(archive, certs, protocol):
    srv = FakeImap([Folder("INBOX", MSGS)], caps=b"IMAP4rev1 LOGINDISABLED")
    with HostileServer(srv, tls="implicit" if protocol == "imaps" else None,
                       cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol=protocol)
        assert_aborted(archive, prof, hs, ["logindisabled"])


@pytest.mark.parametrize("where", ["greeting", "login", "list"])
def test_referral_is_never_followed(archive, certs, where):
    """REFERRAL (RFC 2221) codes point at another server; the client
    must fail and never connect there."""
    other = HostileServer(FakeImap([Folder("INBOX", MSGS)]),
                          tls="implicit", cert=certs.server).start()
    url = b"imap://alice@127.0.0.1:%d/" % other.port

    class S(FakeImap):
        def greet(self):
            if where == "greeting":
                self.conn.send(b"* BYE [REFERRAL " + url + b"] go there\r\n")
                self.conn.wait_closed(5)
                raise Stopped()
            FakeImap.greet(self)

        def on_authenticate(self, tag, rest):
            if where == "login":
                self.conn.send(tag + b" NO [REFERRAL " + url +
                               b"] log in there\r\n")
                return
            FakeImap.on_authenticate(self, tag, rest)

        def on_list(self, tag, rest):
            self.conn.send(tag + b" NO [REFERRAL " + url + b"] over there\r\n")

    try:
        with HostileServer(S([Folder("INBOX", MSGS)]), tls="implicit",
                           cert=certs.server) as hs:
            prof = hostile.profile(archive, hs, certs)
            archive.write_config(prof)
            r, proto = archive.run(prof["name"])
            time.sleep(0.2)
    finally:
        other.stop()
    assert r.rc == 1, str(r)
    assert proto["status"] in ("failed", "completed_with_errors"), str(r)
    assert proto["counts"]["archived"] == 0
    assert not other.conns, "the client followed a REFERRAL"
    assert hostile.event_texts(proto, "error"), str(r)


# ---- certificates --------------------------------------------------------------


CERT_CASES = {
    # name: (which cert, tls.server_name or None, keywords)
    "self_signed": ("selfsigned", None, ["self-signed", "self signed"]),
    "unknown_root": ("unknown_root", None, ["unable to get local issuer"]),
    "wrong_name": ("wrongname", None, ["mismatch"]),
    "expired": ("expired", None, ["expired"]),
    "nul_in_name": ("nul_name", "localhost", ["mismatch"]),
}


def pick_cert(hcerts, which):
    certs, extra = hcerts
    return getattr(certs, which) if hasattr(certs, which) else extra[which]


@pytest.mark.parametrize("protocol", ["imaps", "imap+starttls"])
@pytest.mark.parametrize("case", sorted(CERT_CASES))
def test_bad_certificate_refused(archive, hcerts, case, protocol):
    certs, _ = hcerts
    which, sni, keywords = CERT_CASES[case]
    cert = pick_cert(hcerts, which)
    srv = starttls_server()
    with HostileServer(srv, tls="implicit" if protocol == "imaps" else None,
                       cert=cert) as hs:
        over = {"server": {"tls": {"server_name": sni}}} if sni else {}
        prof = hostile.profile(archive, hs, certs, protocol=protocol, **over)
        proto = assert_aborted(archive, prof, hs, keywords)
    assert "certificate" in " ".join(
        hostile.event_texts(proto, "error")).lower()
    assert srv.logins == 0


def test_hostile_certs_are_what_they_claim(hcerts):
    """The test certificates themselves: otherwise the refusals above
    could pass for the wrong reason."""
    import subprocess
    certs, extra = hcerts

    def text(path):
        return subprocess.run(["openssl", "x509", "-in", path, "-noout",
                               "-text"], capture_output=True, text=True,
                              check=True).stdout

    def verify(path):
        return subprocess.run(["openssl", "verify", "-CAfile", certs.ca,
                               path], capture_output=True, text=True)
    assert "Not After : Feb  1 00:00:00 2020 GMT" in text(extra["expired"][0])
    assert "certificate has expired" in verify(extra["expired"][0]).stdout + \
        verify(extra["expired"][0]).stderr
    assert verify(extra["nul_name"][0]).returncode == 0
    assert verify(extra["unknown_root"][0]).returncode != 0
    der = ssl.PEM_cert_to_DER_cert(open(extra["nul_name"][0]).read())
    assert hostile.NUL_NAME in der


def test_switched_certificate_against_pin(archive, hcerts):
    """A pinned profile archives from the pinned certificate; when the
    server switches to another certificate - even one the CA vouches for -
    the next run is refused."""
    certs, extra = hcerts
    fp = certs.fingerprint(certs.server[0])
    srv = FakeImap([Folder("INBOX", MSGS)])
    with HostileServer(srv, tls="implicit",
                       cert=[certs.server, extra["nul_name"]]) as hs:
        prof = hostile.profile(archive, hs, certs,
                               server={"tls": {"fingerprint": fp}})
        proto = run_ok(archive, prof)
        assert proto["counts"]["archived"] == len(MSGS)
        logins = srv.logins
        r, proto = archive.run(prof["name"])
    assert r.rc == 1, str(r)
    assert proto["status"] == "failed"
    err = " ".join(hostile.event_texts(proto, "error")).lower()
    assert "fingerprint" in err or "pin" in err, err
    assert srv.logins == logins, "logged in to a server with the wrong cert"


# ---- handshakes that never finish ----------------------------------------------


def stall_script(partial, starttls):
    def script(conn):
        if starttls:
            conn.send(b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] "
                      b"hi\r\n")
            tag, cmd, _, _ = conn.command()
            if cmd != "STARTTLS":
                raise AssertionError("expected STARTTLS, got %s" % cmd)
            conn.send(tag + b" OK go\r\n")
        conn.stall_handshake(partial)
    return script


@pytest.mark.parametrize("protocol", ["imaps", "imap+starttls"])
@pytest.mark.parametrize("partial", [False, True],
                         ids=["never_starts", "stalls_midway"])
def test_handshake_stall_times_out(archive, certs, protocol, partial):
    script = stall_script(partial, protocol == "imap+starttls")
    with HostileServer(script, cert=certs.server, lifetime=40) as hs:
        prof = hostile.profile(archive, hs, certs, protocol=protocol,
                               timeout="2s")
        assert_aborted(archive, prof, hs,
                       ["timed out", "no progress"], bound=12)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls10_only_server_refused(archive, certs):
    ctx = hostile.server_context(certs.server,
                                 min_version=ssl.TLSVersion.TLSv1,
                                 max_version=ssl.TLSVersion.TLSv1,
                                 ciphers="DEFAULT:@SECLEVEL=0")
    srv = FakeImap([Folder("INBOX", MSGS)])
    with HostileServer(srv, tls="implicit", context=ctx) as hs:
        # The server really speaks TLS 1.0: a client that allows it
        # completes the handshake (else this test proves nothing).
        cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cctx.minimum_version = ssl.TLSVersion.TLSv1
        cctx.maximum_version = ssl.TLSVersion.TLSv1
        cctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        cctx.load_verify_locations(certs.ca)
        import socket
        with socket.create_connection(("127.0.0.1", hs.port), 5) as s:
            with cctx.wrap_socket(s, server_hostname="localhost") as t:
                assert t.version() == "TLSv1"
                assert t.recv(100).startswith(b"* OK")
        hs.conns.clear()
        prof = hostile.profile(archive, hs, certs)
        assert_aborted(archive, prof, hs,
                       ["protocol version"])


def test_plaintext_on_implicit_tls_port(archive, certs):
    srv = FakeImap([Folder("INBOX", MSGS)])
    with HostileServer(srv, cert=certs.server) as hs:	# no TLS at all
        prof = hostile.profile(archive, hs, certs, protocol="imaps")
        assert_aborted(archive, prof, hs,
                       ["wrong version number", "handshake"], bound=12)
    assert srv.logins == 0


# ---- other profiles are unaffected ------------------------------------------------


def test_other_profiles_unaffected(archive, certs):
    bad = starttls_server(starttls=False)
    good = FakeImap([Folder("INBOX", MSGS)])
    with HostileServer(bad, cert=certs.server) as hb, \
            HostileServer(good, tls="implicit", cert=certs.server) as hg:
        abad = Account("bad")
        pb = hostile.profile(archive, hb, certs, protocol="imap+starttls",
                             account=abad)
        pg = hostile.profile(archive, hg, certs, account=Account("good"))
        archive.write_config(pb, pg)
        r = archive.cli("run", "--json", "bad", "good")
    assert r.rc == 1, str(r)
    assert last_protocol(archive, "bad")["status"] == "failed"
    pgood = last_protocol(archive, "good")
    assert pgood["status"] == "succeeded", pgood
    assert pgood["counts"]["archived"] == len(MSGS)
    assert not credentials_sent(hb, abad.name, abad.password)
    assert set(archive.files()) == {sha256(m) for m in MSGS}


# ---- POP3 (pop3s, pop3+starttls) -------------------------------------------------

from hostile import FakePop3, pop3_commands  # noqa: E402

PMSGS = [b"Subject: pop %d\r\nMessage-ID: <pop%d@hostile>\r\n\r\n"
         b".dot-stuffed line %d\r\n" % (i, i, i) for i in range(2)]


def pop3_server(cls=FakePop3, **kw):
    kw.setdefault("stls", True)
    return cls(PMSGS, **kw)


@pytest.mark.parametrize("protocol", ["pop3s", "pop3+starttls"])
def test_pop3_baseline_archives(archive, certs, protocol):
    srv = pop3_server()
    with HostileServer(srv, tls="implicit" if protocol == "pop3s" else None,
                       cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol=protocol)
        proto = run_ok(archive, prof)
    assert proto["counts"]["archived"] == len(PMSGS)
    assert set(archive.files()) == {sha256(m) for m in PMSGS}
    assert "DELE" not in pop3_commands(hs)
    if protocol == "pop3+starttls":
        cmds = pop3_commands(hs)
        assert "CAPA" in cmds[cmds.index("STLS") + 1:], cmds
    assert not hs.errors


def test_pop3_stls_not_offered(archive, certs):
    with HostileServer(pop3_server(stls=False), cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="pop3+starttls")
        assert_aborted(archive, prof, hs, ["stls"])
    assert "STLS" not in pop3_commands(hs)


@pytest.mark.parametrize("answer", [
    b"-ERR TLS not available now\r\n",
    b"+ go on\r\n",
    b"garbage \x1b[2J\r\n",
], ids=["ERR", "continuation", "garbage"])
def test_pop3_stls_answer_refused(archive, certs, answer):
    class S(FakePop3):
        def on_stls(self, rest):
            self.conn.send(answer)
            self.conn.wait_closed(10)
            raise Stopped()
    with HostileServer(pop3_server(S), cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="pop3+starttls")
        assert_aborted(archive, prof, hs,
                       ["stls", "not a pop3 status", "refused"])


def test_pop3_plaintext_after_stls_ok_same_segment(archive, certs):
    class S(FakePop3):
        def on_stls(self, rest):
            self.conn.send(b"+OK begin TLS\r\n+OK injected\r\n")
            self.conn.wait_closed(5)
            raise Stopped()
    with HostileServer(pop3_server(S), cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="pop3+starttls")
        assert_aborted(archive, prof, hs, ["injection"])


def test_pop3_capabilities_before_tls_do_not_count(archive, certs):
    """SASL PLAIN offered only before TLS: after STLS the client asks
    CAPA again and logs in with USER/PASS, never AUTH."""
    class S(FakePop3):
        def capabilities(self):
            if self.conn.tls:
                return [b"USER", b"UIDL"]
            return [b"USER", b"UIDL", b"SASL PLAIN", b"STLS"]
    with HostileServer(pop3_server(S), cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="pop3+starttls")
        proto = run_ok(archive, prof)
    assert proto["counts"]["archived"] == len(PMSGS)
    cmds = pop3_commands(hs)
    after = cmds[cmds.index("STLS") + 1:]
    assert after.index("CAPA") < after.index("USER"), cmds
    assert "AUTH" not in cmds, cmds


@pytest.mark.parametrize("protocol", ["pop3s", "pop3+starttls"])
@pytest.mark.parametrize("case", sorted(CERT_CASES))
def test_pop3_bad_certificate_refused(archive, hcerts, case, protocol):
    certs, _ = hcerts
    which, sni, keywords = CERT_CASES[case]
    srv = pop3_server()
    with HostileServer(srv, tls="implicit" if protocol == "pop3s" else None,
                       cert=pick_cert(hcerts, which)) as hs:
        over = {"server": {"tls": {"server_name": sni}}} if sni else {}
        prof = hostile.profile(archive, hs, certs, protocol=protocol, **over)
        assert_aborted(archive, prof, hs, keywords)
    assert srv.logins == 0


POP3_LOGIN_OR_MAILBOX = {"USER", "PASS", "AUTH", "APOP", "STAT", "LIST",
                         "UIDL", "RETR", "TOP", "DELE"}


@pytest.mark.parametrize("protocol", ["pop3s", "pop3+starttls"])
@pytest.mark.parametrize("partial", [False, True],
                         ids=["never_starts", "stalls_midway"])
def test_pop3_handshake_stall_times_out(archive, certs, protocol, partial):
    """The server takes the connection (for STLS: greets, offers STLS and
    answers +OK) and then never sends a ServerHello, or only half of its
    first flight: the run must give up after the profile's timeout,
    naming the TLS handshake, before any credential or mailbox command."""
    class S(FakePop3):
        def on_stls(self, rest):
            self.conn.send(b"+OK begin TLS\r\n")
            self.conn.stall_handshake(partial)
            raise Stopped()

    starttls = protocol == "pop3+starttls"
    script = pop3_server(S) if starttls else \
        (lambda conn: conn.stall_handshake(partial))
    with HostileServer(script, cert=certs.server, lifetime=40) as hs:
        prof = hostile.profile(archive, hs, certs, protocol=protocol,
                               timeout="2s")
        proto = assert_aborted(archive, prof, hs,
                               ["timed out", "no progress"], bound=12)
    err = " ".join(hostile.event_texts(proto, "error")).lower()
    assert "handshake" in err, err
    # A timeout, as for IMAP, not a TLS refusal: the kind comes from the
    # error, not from the words "TLS handshake" in its text.
    assert "timeout error" in err and "tls error" not in err, err
    cmds = pop3_commands(hs)
    assert not set(cmds) & POP3_LOGIN_OR_MAILBOX, cmds
    assert cmds == (["CAPA", "STLS"] if starttls else []), cmds
    # The stall is where the test means it to be: the client sent its
    # ClientHello (after the +OK to STLS) and got none / part of an answer.
    c = hs.conns[0]
    hello = c.received.split(b"STLS\r\n", 1)[1] if starttls else c.received
    assert hello[:2] == b"\x16\x03" and hello[5:6] == b"\x01", hello[:8]
    assert c.handshake_sent is not None
    assert (c.handshake_sent > 0) == partial, c.handshake_sent
    assert not hs.errors


def test_pop3_plaintext_on_implicit_tls_port(archive, certs):
    srv = pop3_server()
    with HostileServer(srv, cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="pop3s")
        assert_aborted(archive, prof, hs,
                       ["wrong version number", "handshake"], bound=12)
    assert srv.logins == 0
