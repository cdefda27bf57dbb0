"""
test_imap_errors.py - runs that must fail, and fail clearly: wrong
password, unknown host, closed port, silent server, untrusted or misnamed
certificates.  Each exits 1 with a "failed" protocol whose error event says
what happened, archives nothing, and leaks the password nowhere.  Also the
ways a certificate is accepted without a CA: a pinned fingerprint, and
verify: false (which the protocol must call out).
"""

import socket
import subprocess

import pytest

import mailgen
from conftest import Archive, sha256, error_texts, all_messages
from dovecot import free_port


def one_message_user(server, seed):
    """A user with one message whom nobody has logged in as yet."""
    user = server.add_user()
    m = mailgen.MailGen(seed=seed).message(subject="TLS test")
    server.deliver(user, "INBOX", m.raw)
    return user


def expect_failure(archive, prof, keywords, secrets=()):
    """Run prof; it must fail with an error event containing one of the
    keywords (case-insensitive).  Returns the protocol."""
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 1, str(r)
    assert proto["status"] == "failed", str(r)
    assert proto["counts"]["archived"] == 0
    errors = error_texts(proto)
    assert errors, "no error event in the protocol\n%s" % r
    text = " ".join(errors).lower()
    assert any(k in text for k in keywords), \
        "error events %r mention none of %r" % (errors, keywords)
    assert archive.files() == {}
    again = archive.cli("protocol", "--last", prof["name"], "--json")
    assert again.rc == 0, str(again)
    assert again.json()["status"] == "failed"
    assert again.json()["run"] == proto["run"]
    for s in secrets:
        archive.assert_secret_absent(s)
    return proto


def test_wrong_password(dovecot, archive):
    user = one_message_user(dovecot, 1)
    wrong = "Wrong-%s-pw" % sha256(user.name.encode())[:12]
    prof = archive.profile(dovecot, user, password=wrong)
    expect_failure(archive, prof, ["authentication", "login", "auth"],
                   secrets=[wrong, user.password])


def test_unknown_host(dovecot, archive):
    user = one_message_user(dovecot, 2)
    prof = archive.profile(dovecot, user, server={"host": "nosuch.invalid"})
    expect_failure(archive, prof,
                   ["resolv", "dns", "not known", "lookup", "no such",
                    "unknown host", "name or service", "no address",
                    "nosuch.invalid"], secrets=[user.password])


def test_closed_port(dovecot, archive):
    user = one_message_user(dovecot, 3)
    prof = archive.profile(dovecot, user, server={"port": free_port()})
    expect_failure(archive, prof, ["refused"], secrets=[user.password])


def test_silent_server_times_out(dovecot, archive):
    user = one_message_user(dovecot, 4)
    with socket.socket() as lsn:	# accepts (backlog), never greets
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(8)
        prof = archive.profile(dovecot, user, protocol="imap+starttls",
                               server={"port": lsn.getsockname()[1],
                                       "timeout": "2s"})
        expect_failure(archive, prof, ["time"], secrets=[user.password])
    assert archive.outputs[0].seconds < 30, archive.outputs[0]


def test_tls_to_a_plain_port_fails(dovecot, archive):
    user = one_message_user(dovecot, 5)
    prof = archive.profile(dovecot, user, protocol="imaps",
                           server={"port": dovecot.ports["imap"]})
    expect_failure(archive, prof, ["tls", "ssl", "handshake"],
                   secrets=[user.password])
    assert not dovecot.login_attempted(user)


@pytest.mark.parametrize("protocol", ["imaps", "imap+starttls"])
def test_untrusted_certificate(dovecot, archive, protocol):
    """No ca_file: the system trust store does not know our test CA."""
    user = one_message_user(dovecot, 6)
    prof = archive.profile(dovecot, user, protocol=protocol,
                           server={"tls": Archive.DELETE})
    expect_failure(archive, prof, ["certificate"], secrets=[user.password])
    assert not dovecot.login_attempted(user), \
        "the password went to an unverified server"


def test_self_signed_certificate_is_not_trusted(dovecot_selfsigned, archive):
    """ca_file names our CA; the server's self-signed cert is not from it."""
    user = one_message_user(dovecot_selfsigned, 7)
    prof = archive.profile(dovecot_selfsigned, user)
    expect_failure(archive, prof, ["certificate"], secrets=[user.password])
    assert not dovecot_selfsigned.login_attempted(user)


def test_wrong_server_name(dovecot, archive):
    user = one_message_user(dovecot, 8)
    prof = archive.profile(dovecot, user,
                           server={"tls": {"server_name": "wrong.example"}})
    expect_failure(archive, prof, ["name", "host", "mismatch"],
                   secrets=[user.password])
    assert not dovecot.login_attempted(user)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_certificate_for_another_host(dovecot_wrongname, archive, host):
    """A CA-signed certificate, but for other-host.example."""
    user = one_message_user(dovecot_wrongname, 9)
    prof = archive.profile(dovecot_wrongname, user, server={"host": host})
    expect_failure(archive, prof, ["name", "host", "mismatch"],
                   secrets=[user.password])
    assert not dovecot_wrongname.login_attempted(user)


def openssl_fingerprint(cert):
    """What a user pastes: openssl's SHA-256 fingerprint, as sha256:hex."""
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout",
                          "-fingerprint", "-sha256"], capture_output=True,
                         text=True, check=True).stdout
    return "sha256:" + out.split("=", 1)[1].strip().replace(":", "").lower()


def test_pinned_fingerprint_accepts_self_signed(dovecot_selfsigned, archive):
    srv = dovecot_selfsigned
    user = one_message_user(srv, 10)
    fp = openssl_fingerprint(srv.cert[0])
    assert fp == srv.certs.fingerprint(srv.cert[0])
    prof = archive.profile(srv, user,
                           server={"tls": {"ca_file": Archive.DELETE,
                                           "fingerprint": fp}})
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 0, str(r)
    assert proto["status"] == "succeeded"
    msgs = all_messages(srv.fetch_all(user))
    assert proto["counts"]["archived"] == len(msgs) == 1
    assert archive.files() == {sha256(msgs[0]): msgs[0]}
    archive.assert_secret_absent(user.password)


def test_wrong_fingerprint_is_refused(dovecot_selfsigned, dovecot, archive):
    srv = dovecot_selfsigned
    user = one_message_user(srv, 11)
    other = srv.certs.fingerprint(dovecot.cert[0])	# not what srv serves
    prof = archive.profile(srv, user,
                           server={"tls": {"ca_file": Archive.DELETE,
                                           "fingerprint": other}})
    expect_failure(archive, prof, ["fingerprint", "certificate", "pin"],
                   secrets=[user.password])
    assert not srv.login_attempted(user)


def test_verify_false_runs_and_says_so(dovecot_selfsigned, archive):
    srv = dovecot_selfsigned
    user = one_message_user(srv, 12)
    prof = archive.profile(srv, user,
                           server={"tls": {"ca_file": Archive.DELETE,
                                           "verify": False,
                                           "insecure_i_know": True}})
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 0, str(r)
    assert proto["status"] == "succeeded"
    assert proto["counts"]["archived"] == 1
    texts = [e["text"].lower() for e in proto["events"]]
    assert any("not verified" in t or "verify: false" in t for t in texts), \
        "no event says the certificate was not verified: %r" % texts
    archive.assert_secret_absent(user.password)
