"""
test_imap_archive.py - archiving runs against a real Dovecot: every message
lands in the archive byte for byte under its SHA-256, later runs archive
only what is new, identical bytes are stored once, the server is left as it
was, and a run killed half-way loses and duplicates nothing.
"""

import datetime
import os
import signal
import subprocess
import time

import pytest

import mailgen
from conftest import (MAILSTOW, sha256, parse_time, all_messages,
                      require_mailstow)


def check_archive_holds(archive, server_msgs):
    """Every distinct message is a file named by its SHA-256 holding
    exactly its bytes, and there is nothing else."""
    files = archive.files()
    want = {sha256(m): m for m in server_msgs}
    missing = sorted(set(want) - set(files))
    assert not missing, "%d messages not in the archive" % len(missing)
    extra = sorted(set(files) - set(want))
    assert not extra, "files for no server message: %s" % extra[:5]
    for h, raw in want.items():
        assert files[h] == raw, "archive file %s differs from the server" % h
    return want


def check_run(proto, name, t0, t1):
    assert proto["profile"] == name
    assert isinstance(proto["run"], int) and proto["run"] > 0
    assert isinstance(proto["trigger"], str) and proto["trigger"]
    started = parse_time(proto["started"])
    finished = parse_time(proto["finished"])
    slack = datetime.timedelta(seconds=2)
    assert t0 - slack <= started <= finished <= t1 + slack, proto


def folder_counts(proto):
    out = {}
    for f in proto["folders"]:
        assert f["folder"] not in out, "folder listed twice: %s" % f
        out[f["folder"]] = f
    return out


def now():
    return datetime.datetime.now(datetime.timezone.utc)


@pytest.mark.parametrize("protocol,host", [
    ("imaps", "127.0.0.1"),
    ("imap+starttls", "localhost"),
    ("imap", "127.0.0.1"),
])
def test_cold_run_archives_every_message(dovecot, archive, seeded,
                                         protocol, host):
    user, server = seeded()
    msgs = all_messages(server)
    distinct = set(msgs)
    assert len(distinct) == len(msgs) - 1	# the seeded COPY
    prof = archive.profile(dovecot, user, protocol=protocol,
                           server={"host": host})
    archive.write_config(prof)

    t0 = now()
    r, proto = archive.run(prof["name"])
    t1 = now()
    assert r.rc == 0, str(r)
    assert proto["status"] == "succeeded", str(r)
    check_run(proto, prof["name"], t0, t1)
    c = proto["counts"]
    assert c["found"] == len(msgs)
    assert c["archived"] == len(distinct)
    assert c["skipped"] == len(msgs) - len(distinct)
    assert c["failed"] == 0
    assert c["bytes"] in (sum(map(len, distinct)), sum(map(len, msgs)))
    assert not [e for e in proto["events"] if e["level"] == "error"], proto

    # Per folder, under the names a user sees (UTF-8, "/" nesting).
    per = folder_counts(proto)
    assert set(per) == set(server), "folders: %s" % sorted(per)
    for folder, uids in server.items():
        assert per[folder]["found"] == len(uids), per[folder]
        assert per[folder]["failed"] == 0
    assert sum(f["archived"] for f in per.values()) == c["archived"]

    want = check_archive_holds(archive, msgs)
    for h, raw in want.items():
        s = archive.cli("show", h)
        assert s.rc == 0, str(s)
        assert s.out == raw, "show %s printed other bytes" % h
    archive.assert_secret_absent(user.password)


def test_second_run_archives_nothing_new(dovecot, archive, seeded):
    user, server = seeded()
    msgs = all_messages(server)
    prof = archive.profile(dovecot, user)
    archive.write_config(prof)
    r, first = archive.run(prof["name"])
    assert r.rc == 0 and first["status"] == "succeeded", str(r)
    before = archive.files()

    r, second = archive.run(prof["name"])
    assert r.rc == 0, str(r)
    assert second["status"] == "succeeded"
    assert second["run"] > first["run"]
    c = second["counts"]
    assert c["found"] == len(msgs)
    assert c["archived"] == 0
    assert c["skipped"] == c["found"]
    assert c["failed"] == 0
    assert archive.files() == before


def test_new_mail_is_archived_on_the_next_run(dovecot, archive, seeded):
    user, server = seeded()
    prof = archive.profile(dovecot, user)
    archive.write_config(prof)
    r, first = archive.run(prof["name"])
    assert r.rc == 0, str(r)
    found_before = first["counts"]["found"]

    g = mailgen.MailGen(seed=777)
    new = [("INBOX", g.message(kind="plain")),
           ("Archive/2024", g.message(kind="mixed", attachment=3000)),
           ("Neu/Unterordner", g.message(encoded="b"))]	# a new folder
    for folder, m in new:
        dovecot.append(user, folder, m.raw)
    after = dovecot.fetch_all(user)
    added = [after[f][max(after[f])] for f, _ in new]

    r, second = archive.run(prof["name"])
    assert r.rc == 0 and second["status"] == "succeeded", str(r)
    c = second["counts"]
    assert c["found"] == found_before + len(new)
    assert c["archived"] == len(new)
    assert c["skipped"] == found_before
    per = folder_counts(second)
    assert per["Neu/Unterordner"]["archived"] == 1
    assert per["INBOX"]["archived"] == 1
    # An unchanged folder may be left out of the list (STATUS said so).
    assert per.get("Sent", {"archived": 0})["archived"] == 0
    files = check_archive_holds(archive, all_messages(after))
    for raw in added:
        assert sha256(raw) in files


def test_same_bytes_in_two_folders_are_stored_once(dovecot, archive, seeded):
    g = mailgen.MailGen(seed=4242)
    twice, once = g.message(subject="Filed twice"), g.message()
    layout = mailgen.Layout(folders={"INBOX": [twice, once],
                                     "Archive/2024": []},
                            copies=[("INBOX", 0, "Archive/2024")])
    user, server = seeded(layout)
    raw = server["INBOX"][min(server["INBOX"])]
    assert raw in server["Archive/2024"].values()
    prof = archive.profile(dovecot, user)
    archive.write_config(prof)

    r, proto = archive.run(prof["name"])
    assert r.rc == 0 and proto["status"] == "succeeded", str(r)
    c = proto["counts"]
    assert (c["found"], c["archived"], c["skipped"]) == (3, 2, 1)
    files = archive.files()
    assert len(files) == 2
    assert files[sha256(raw)] == raw

    msgs = archive.messages(user.name)
    assert len(msgs) == 2, msgs
    entry = next(m for m in msgs if m["hash"] == sha256(raw))
    assert entry["size"] == len(raw)
    assert entry["first_run"] == proto["run"]
    locs = entry["locations"]
    assert sorted(l["folder"] for l in locs) == ["Archive/2024", "INBOX"]
    for loc in locs:
        assert loc["profile"] == prof["name"]
        assert loc["uidvalidity"] == dovecot.uidvalidity(user, loc["folder"])
        assert server[loc["folder"]][loc["uid"]] == raw
    other = next(m for m in msgs if m["hash"] != sha256(raw))
    assert len(other["locations"]) == 1


def test_same_bytes_for_two_archive_users(dovecot, archive, seeded):
    """Each archive user has the message; the file exists once."""
    m = mailgen.MailGen(seed=99).message(subject="Sent to both")
    layout = mailgen.Layout(folders={"INBOX": [m]}, copies=[])
    u1, s1 = seeded(layout)
    u2, s2 = seeded(layout)
    raw = s1["INBOX"][1]
    assert s2["INBOX"][1] == raw
    p1 = archive.profile(dovecot, u1)
    p2 = archive.profile(dovecot, u2)
    archive.write_config(p1, p2)
    for p in (p1, p2):
        r, proto = archive.run(p["name"])
        assert r.rc == 0, str(r)
        assert proto["counts"]["archived"] == 1, proto
    assert list(archive.files()) == [sha256(raw)]
    for u in (u1, u2):
        assert [x["hash"] for x in archive.messages(u.name)] == [sha256(raw)]


def test_archive_user_names_the_archive(dovecot, archive, seeded):
    m = mailgen.MailGen(seed=5).message()
    user, server = seeded(mailgen.Layout(folders={"INBOX": [m]}, copies=[]))
    prof = archive.profile(dovecot, user, archive_user="records-dept")
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 0, str(r)
    assert [x["hash"] for x in archive.messages("records-dept")] == \
        [sha256(server["INBOX"][1])]
    other = archive.cli("messages", user.name, "--json")
    assert other.rc != 0 or other.json() == [], str(other)


def test_flags_on_the_server_are_unchanged(dovecot, archive, seeded):
    user, server = seeded()
    before = dovecot.flags(user)
    unseen = [(f, u) for f, uids in before.items()
              for u, fl in uids.items() if "\\Seen" not in fl]
    assert len(unseen) >= 5
    # \Recent is still there on folders nobody SELECTed: EXAMINE keeps it.
    assert any("\\Recent" in fl for uids in before.values()
               for fl in uids.values())
    prof = archive.profile(dovecot, user)
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 0 and proto["status"] == "succeeded", str(r)

    after = dovecot.flags(user)
    for f, u in unseen:
        assert "\\Seen" not in after[f][u], "%s UID %d became \\Seen" % (f, u)
    assert after == before
    assert dovecot.fetch_all(user) == server


def test_excluded_folder_is_not_archived(dovecot, archive, seeded):
    user, server = seeded(mailgen.standard_mailbox(seed=3, big=0))
    prof = archive.profile(dovecot, user,
                           folders={"include": ["*"], "exclude": ["Trash"]})
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 0 and proto["status"] == "succeeded", str(r)
    kept = {f: m for f, m in server.items() if f != "Trash"}
    assert "Trash" not in folder_counts(proto)
    assert proto["counts"]["found"] == len(all_messages(kept))
    files = check_archive_holds(archive, all_messages(kept))
    for raw in server["Trash"].values():
        assert sha256(raw) not in files


def test_killed_run_loses_and_duplicates_nothing(dovecot, archive, seeded):
    layout = mailgen.standard_mailbox(seed=21)
    g = mailgen.MailGen(seed=22)
    layout.folders["Bulk"] = [g.message(kind="mixed", attachment=200000)
                              for _ in range(40)]
    user, server = seeded(layout)
    msgs = all_messages(server)
    prof = archive.profile(dovecot, user)
    archive.write_config(prof)

    # SIGKILL as soon as the first message file appears.
    require_mailstow()
    p = subprocess.Popen([str(MAILSTOW), "-c", str(archive.config), "run",
                          prof["name"]], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    top = archive.path / "messages"
    while time.monotonic() < deadline and p.poll() is None:
        if top.exists() and any(x.is_file() for x in top.rglob("*")):
            break
        time.sleep(0.001)
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)

    # Every file already present holds the bytes its name promises.
    for h, raw in archive.files().items():
        assert sha256(raw) == h, "torn file %s" % h

    r, proto = archive.run(prof["name"])
    assert r.rc == 0 and proto["status"] == "succeeded", str(r)
    c = proto["counts"]
    assert c["found"] == len(msgs)
    assert c["archived"] + c["skipped"] == c["found"]
    check_archive_holds(archive, msgs)
    entries = archive.messages(user.name)
    hashes = [e["hash"] for e in entries]
    assert len(hashes) == len(set(hashes)), "duplicate index entries"
    assert set(hashes) == {sha256(m) for m in msgs}
    # The killed run shows as interrupted (or failed), never "running".
    runs = archive.cli("runs", "--profile", prof["name"], "--json")
    assert runs.rc == 0, str(runs)
    statuses = [x["status"] for x in runs.json()]
    assert statuses[0] == "succeeded"
    assert all(s in ("succeeded", "interrupted", "failed")
               for s in statuses), statuses
