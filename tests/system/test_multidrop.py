"""
test_multidrop.py - multidrop (catch-all) profiles against the test
Dovecot, over IMAP and POP3: one mailbox holds mail for several people,
and each message lands in the archive of every person it was delivered
to, once, from one file on disk.  Covered: several Delivered-To fields on
one copy (the MTA's catch-all delivery for several people), Bcc-only
recipients that only Delivered-To shows, detail addresses (alice+news@),
explicit routes that win over local domains, the To/Cc fall-back with
groups, comments and folding, Received: "for" when asked for, and
strangers, which go to the `unknown` archive user or, with `skip`, are
left out, counted as skipped and named in a warning.  Per-user counts
are events of the run.

The messages are put into the catch-all's INBOX with doveadm (no login),
so the bytes the archive must hold are exactly the ones written here,
which the test checks against what Dovecot then serves.
"""

import os
import re
import time

import pytest

from conftest import Archive, sha256

DOMAIN = "example.com"


def tag():
    return "md%s" % os.urandom(3).hex()


def message(t, n, *headers):
    """A message whose only recipients are in `headers` (each one field,
    folded or not)."""
    lines = list(headers) + [
        "From: Sender <sender@outside.test>",
        "Subject: multidrop %s #%d" % (t, n),
        "Date: Fri, 01 Mar 2024 10:%02d:00 +0000" % n,
        "Message-ID: <%s.%d@outside.test>" % (t, n),
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ]
    body = "Message %d of %s.\r\nNothing else.\r\n" % (n, t)
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def catchall_mail(t):
    """[(name, bytes, {archive users}, stranger?)] in delivery order, and
    the strangers' addresses.  "?" stands for the unknown archive user."""
    m = {}
    m["two"] = message(t, 1, "Delivered-To: alice@example.com",
                       "Delivered-To: bob@example.com",
                       "To: alice@example.com, bob@example.com")
    m["bcc"] = message(t, 2, "Delivered-To: alice@example.com",
                       "Delivered-To: carol@example.com",
                       "To: Alice <alice@example.com>")
    m["detail"] = message(t, 3, "Delivered-To: alice+news@example.com",
                          'To: "Newsletter readers" <alice+news@example.com>')
    m["stranger"] = message(t, 4, "Delivered-To: someone@elsewhere.net",
                            "To: someone@elsewhere.net")
    m["fallback"] = message(t, 5, "To: Bob <Bob@Example.COM>, "
                            "stranger2@other.org",
                            'Cc: "Dave D." <dave@example.com>')
    m["route"] = message(t, 6, "Delivered-To: sales-eu@example.com",
                         "To: sales-eu@example.com")
    m["xorig"] = message(t, 7, "X-Original-To: help@support.example.org",
                         "To: help@support.example.org, alice@example.com")
    m["explicit"] = message(t, 8, "Delivered-To: boss@example.com")
    m["group"] = message(t, 10, "To: undisclosed-recipients:;",
                         "Cc: team: carol@example.com (Carol C.),\r\n"
                         "\tDave <dave(at home)@EXAMPLE.com>;")
    want = [
        ("two", {"alice", "bob"}),
        ("bcc", {"alice", "carol"}),
        ("detail", {"alice"}),
        ("stranger", {"?"}),
        ("fallback", {"bob", "dave", "?"}),
        ("route", {"sales"}),
        ("xorig", {"support"}),
        ("explicit", {"alice"}),
        ("two", {"alice", "bob"}),	# the same bytes delivered again
        ("group", {"carol", "dave"}),
    ]
    return [(name, m[name], users) for name, users in want], \
        {"someone@elsewhere.net", "stranger2@other.org"}


def multidrop_profile(archive, dc, user, protocol, t, unknown):
    md = {"local_domains": [DOMAIN],
          "recipients": {"boss@example.com": "alice",
                         '"sales-*@example.com"': "sales",
                         '"*@support.example.org"': "support"},
          "strip_detail": "+"}
    if unknown is not None:
        md["unknown"] = unknown
    over = {"multidrop": md}
    if protocol.startswith("pop3"):
        over["folders"] = Archive.DELETE
    prof = archive.profile(dc, user, protocol=protocol, name="catchall-" + t,
                           **over)
    prof.pop("archive_user", None)
    return prof


def expected(mail, unknown_user):
    """{archive user: {hash}} and {hash: bytes} for the routing rules."""
    per_user, raw = {}, {}
    for _, data, users in mail:
        h = sha256(data)
        for u in users:
            if u == "?":
                if unknown_user is None:
                    continue
                u = unknown_user
            per_user.setdefault(u, set()).add(h)
            raw[h] = data
    return per_user, raw


def held(archive, archive_user, profile, mailbox):
    msgs = archive.messages(archive_user)
    hashes = [m["hash"] for m in msgs]
    assert len(hashes) == len(set(hashes)), \
        "%s holds a message twice" % archive_user
    for m in msgs:
        assert {(l["profile"], l["mailbox"], l["folder"])
                for l in m["locations"]} == {(profile, mailbox, "INBOX")}, m
    return set(hashes)


def tallies(proto):
    """{archive user: (archived, already archived)} from the events."""
    out = {}
    for e in proto["events"]:
        words = e["text"].split()
        if e["level"] == "info" and words[:2] == ["archive", "user"]:
            # "archive user U: N archived, M already archived"
            user = words[2].rstrip(":")
            assert user not in out, proto["events"]
            out[user] = (int(words[3]), int(words[5]))
    return out


@pytest.mark.parametrize("protocol,unknown", [
    ("imaps", "named"), ("imaps", "skip"), ("imaps", None),
    ("pop3s", "named"), ("pop3s", "skip"),
])
def test_catchall_routes_each_message_to_its_people(dovecot, archive,
                                                    protocol, unknown):
    t = tag()
    mail, strangers = catchall_mail(t)
    box = dovecot.add_user("catchall-" + t)
    for _, data, _ in mail:
        dovecot.deliver(box, "INBOX", data)
    served = sorted(dovecot.fetch_all(box)["INBOX"].values())
    assert served == sorted(data for _, data, _ in mail), \
        "Dovecot changed the bytes"
    unknown_user = {"named": "catchall-unknown", "skip": None,
                    None: box.name}[unknown]
    prof = multidrop_profile(archive, dovecot, box, protocol, t,
                             {"named": "catchall-unknown", "skip": "skip",
                              None: None}[unknown])
    archive.write_config(prof)

    r, proto = archive.run(prof["name"])
    assert r.rc == 0, r
    assert proto["status"] == "succeeded", r
    per_user, raw = expected(mail, unknown_user)
    distinct = {sha256(d) for _, d, _ in mail}
    c = proto["counts"]
    # A message counts once, archived when anyone got it new; the second
    # copy of "two" is already archived for both of its people, and with
    # skip the stranger's message goes to nobody.
    n_skipped = 1 + (unknown_user is None)
    assert (c["found"], c["archived"], c["skipped"], c["failed"]) == \
        (len(mail), len(mail) - n_skipped, n_skipped, 0), c
    assert c["bytes"] == sum(len(d) for d in raw.values()), c

    for u, hashes in per_user.items():
        assert held(archive, u, prof["name"], box.name) == hashes, u
    # Nobody else received anything: not the mailbox's own user unless it
    # is the unknown one, not the stranger's local parts.
    for u in ("someone", "stranger2", "boss", "help", "sales-eu",
              "alice+news", "catchall-unknown", box.name):
        if u not in per_user:
            assert held(archive, u, prof["name"], box.name) == set(), u
    # One file per distinct message, whoever holds it.
    files = archive.files()
    assert set(files) == set(raw)
    for h, data in raw.items():
        assert files[h] == data
    if unknown_user is None:
        assert sha256(mail[3][1]) not in files
        assert sha256(mail[3][1]) in distinct

    # The protocol counts per archive user and names the strangers.
    want_tally = {u: (len(h), 0) for u, h in per_user.items()}
    for u in ("alice", "bob"):		# the second copy of "two"
        want_tally[u] = (want_tally[u][0], 1)
    assert tallies(proto) == want_tally, proto["events"]
    warns = [e["text"] for e in proto["events"] if e["level"] == "warning"]
    named = [w for w in warns if all(s in w for s in strangers)]
    assert len(named) == 1, warns
    if unknown_user is None:
        assert "skip" in named[0], named
    else:
        assert unknown_user in named[0], named

    # Nothing new: the next run archives nothing and stores nothing.
    r2, proto2 = archive.run(prof["name"])
    assert r2.rc == 0, r2
    c = proto2["counts"]
    assert (c["found"], c["archived"], c["failed"]) == (len(mail), 0, 0), c
    assert set(archive.files()) == set(raw)
    for u, hashes in per_user.items():
        assert held(archive, u, prof["name"], box.name) == hashes, u


def test_received_for_when_asked(dovecot, archive):
    """use_received: a Received: "for" clause routes a message that has no
    Delivered-To (and wins over To:); a Delivered-To still comes first."""
    t = tag()
    rcvd = ("Received: from mx.outside.test (mx.outside.test [192.0.2.1])"
            "\r\n\tby mail.example.com with ESMTPS id 4Abc\r\n"
            "\tfor <erin@example.com>; Fri, 1 Mar 2024 10:00:00 +0000")
    a = message(t, 1, rcvd, "To: frank@example.com")
    b = message(t, 2, "Delivered-To: gina@example.com", rcvd,
                "To: frank@example.com")
    box = dovecot.add_user("catchall-" + t)
    for data in (a, b):
        dovecot.deliver(box, "INBOX", data)
    prof = multidrop_profile(archive, dovecot, box, "imaps", t, "skip")
    prof["multidrop"]["use_received"] = True
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 0, r
    assert held(archive, "erin", prof["name"], box.name) == {sha256(a)}
    assert held(archive, "gina", prof["name"], box.name) == {sha256(b)}
    assert held(archive, "frank", prof["name"], box.name) == set()


LOGOUT = re.compile(r"pop3\((?P<user>[^)]*)\).*Logged out .*"
                    r"retr=(?P<retr>\d+)/\d+")


def pop3_retrs(dc, user, start):
    """RETR counts of the POP3 sessions of `user` Dovecot logged after
    log offset `start` (waits a little: the log line follows the QUIT)."""
    deadline = time.monotonic() + 5
    while True:
        got = [int(m.group("retr"))
               for m in LOGOUT.finditer(dc.log_text()[start:])
               if m.group("user") == user.name]
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_skipped_strangers_are_not_fetched_again(dovecot, archive):
    """With unknown: skip, a stranger's message is decided once: the next
    run neither retrieves it again nor reports its recipient again, like
    every other message whose UIDL a run has dealt with."""
    t = tag()
    mine = message(t, 1, "Delivered-To: alice@example.com")
    theirs = message(t, 2, "Delivered-To: someone@elsewhere.net")
    box = dovecot.add_user("catchall-" + t)
    for data in (mine, theirs):
        dovecot.deliver(box, "INBOX", data)
    prof = multidrop_profile(archive, dovecot, box, "pop3s", t, "skip")
    archive.write_config(prof)
    start = len(dovecot.log_text())
    r, proto = archive.run(prof["name"])
    assert r.rc == 0, r
    assert pop3_retrs(dovecot, box, start) == [2]
    c = proto["counts"]
    assert (c["found"], c["archived"], c["skipped"]) == (2, 1, 1), c

    start = len(dovecot.log_text())
    r, proto = archive.run(prof["name"])
    assert r.rc == 0, r
    c = proto["counts"]
    assert (c["found"], c["archived"], c["skipped"]) == (2, 0, 2), c
    assert pop3_retrs(dovecot, box, start) == [0], \
        "the skipped message was retrieved again"
    assert not any("someone@elsewhere.net" in e["text"]
                   for e in proto["events"]), proto["events"]
