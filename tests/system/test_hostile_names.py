"""
test_hostile_names.py - names a hostile server chooses that must never
become paths: IMAP mailbox names that try to escape the archive directory
(isync CVE-2021-20247), that are not valid modified UTF-7, or that hold
CR/LF or NUL, and POP3 UIDLs with / or .., empty, overlong or duplicated
(mutt CVE-2018-14362).  Nothing may be written outside the archive,
distinct folders must keep distinct names, and a folder that cannot be
archived is an error of the run, never a silent skip.  The helpers are
test_hostile_parse.py's.
"""

import os
import pathlib

import pytest

import hostile
from conftest import sha256
from hostile import FakeImap, FakePop3, Folder, HostileServer, event_texts
from test_hostile_parse import msg, no_control, pmsg, run_profile


# ---- mailbox names ---------------------------------------------------------------


def snapshot(root, skip):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if pathlib.Path(dirpath) == skip:
            dirnames[:] = []
            continue
        for n in dirnames + filenames:
            p = pathlib.Path(dirpath) / n
            st = p.lstat()
            out[str(p)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


HOSTILE_NAMES = {
    # raw name on the wire: archived?
    b"..": True,
    b".": True,
    b"../../etc": True,
    b"../../../../../../tmp/mailstow-escape": True,
    b"/abs": True,
    b"/tmp/mailstow-abs-escape": True,
    b"a//b": True,
    b"&Jjo-bad&": True,		# invalid modified UTF-7
    b"&AGE-": True,			# mUTF-7 of plain ASCII: invalid
    b"caf\xe9": True,		# 8-bit: not mUTF-7 at all
    b"a\r\nb": False,		# CR/LF: cannot be named safely
    b"a\x00b": False,
    b"x" * 10000: False,
}


def test_hostile_mailbox_names(archive, certs, tmp_path):
    folders, want, unwanted = [], set(), set()
    for i, (raw, ok) in enumerate(HOSTILE_NAMES.items()):
        m = msg(100 + i, b"folder %r\r\n" % raw[:20])
        folders.append(Folder(raw, [m]))
        (want if ok else unwanted).add(sha256(m))
    folders.insert(0, Folder("INBOX", [msg(1)]))
    want.add(sha256(msg(1)))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    escapes = [pathlib.Path("/tmp/mailstow-escape"),
               pathlib.Path("/tmp/mailstow-abs-escape"), pathlib.Path("/abs")]
    before_esc = [p.exists() for p in escapes]
    srv = FakeImap(folders)
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs)
        archive.write_config(prof, archive_path=deep / "archive")
        archive.path = deep / "archive"
        before = snapshot(tmp_path, archive.path)
        r = archive.cli("run", "--json", prof["name"], cwd=cwd)
    proto = r.json()
    after = snapshot(tmp_path, archive.path)
    assert r.rc in (0, 1), str(r)
    new = sorted(set(after) - set(before))
    assert new == [str(archive.path)], \
        "files created outside the archive: %r" % new
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert changed in ([], [str(deep)]), "changed outside the archive: %r" \
        % changed
    assert os.listdir(cwd) == []
    assert [p.exists() for p in escapes] == before_esc
    for p in archive.path.rglob("*"):
        assert p.resolve().is_relative_to(archive.path.resolve())
    files = archive.files()
    missing = want - set(files)
    assert not missing, "messages of safe-named folders not archived\n%s" % r
    assert not unwanted & set(files)
    listed = archive.messages("alice")
    for m in listed:
        for loc in m["locations"]:
            assert no_control(loc["folder"]), loc
            assert len(loc["folder"]) <= 4000, len(loc["folder"])
    folders_seen = {loc["folder"] for m in listed for loc in m["locations"]}
    for name in ("..", "../../etc", "/abs", "a//b"):
        assert name in folders_seen, (name, folders_seen)
    texts = " ".join(event_texts(proto))
    assert no_control(texts)
    # Folders whose mail could not be archived are errors of the run,
    # never a silent skip: the run does not claim success.
    assert texts.count("its messages are NOT archived") >= 3, \
        event_texts(proto)
    assert proto["status"] == "completed_with_errors", proto["status"]


def test_unusable_name_outside_the_selection_is_no_error(archive, certs):
    """A folder the profile does not select costs nothing, however odd its
    name: the run succeeds and says why the folder was left."""
    folders = [Folder("INBOX", [msg(1)]), Folder(b"a\r\nb", [msg(2)])]
    with HostileServer(FakeImap(folders), tls="implicit",
                       cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs,
                               folders={"include": ["INBOX"]})
        archive.write_config(prof)
        r = archive.cli("run", "--json", prof["name"])
    proto = r.json()
    assert r.rc == 0 and proto["status"] == "succeeded", str(r)
    assert sha256(msg(1)) in archive.files()
    assert "not selected by this profile" in " ".join(event_texts(proto))


def test_long_unusable_name_is_judged_whole(archive, certs):
    """A name too long to open is matched against the profile's patterns
    in full, not cut to what fits in a log line: one the profile selects
    by its end is an error of the run, never "not selected"."""
    long = b"x" * 1990 + b"-keep"
    folders = [Folder("INBOX", [msg(1)]), Folder(long, [msg(2)])]
    with HostileServer(FakeImap(folders), tls="implicit",
                       cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs,
                               folders={"include": ["INBOX", "*-keep"]})
        archive.write_config(prof)
        r = archive.cli("run", "--json", prof["name"])
    proto = r.json()
    texts = " ".join(event_texts(proto))
    assert "its messages are NOT archived" in texts, texts
    assert "not selected by this profile" not in texts, texts
    assert proto["status"] == "completed_with_errors", str(r)
    assert sha256(msg(1)) in archive.files()


@pytest.mark.parametrize("pair", [
    (b"&-Jjo-bad&-", b"&Jjo-bad&"),	# valid mUTF-7 of "&Jjo-bad&" / raw
    (b"a\\x01", b"a\x01"),		# "a\x01" printable / raw control byte
], ids=["mutf7-vs-raw", "escape-vs-control"])
def test_distinct_folders_never_share_a_name(archive, certs, pair):
    """Two different server folders must not end up under one archive
    folder name: they would share known-UID lists and folder state, and
    the second folder (same UIDVALIDITY, same UIDNEXT, same count) would
    be skipped as "unchanged" - its messages never archived."""
    a, b = msg(201, b"first folder\r\n"), msg(202, b"second folder\r\n")
    srv = FakeImap([Folder(pair[0], [a], uidvalidity=5),
                    Folder(pair[1], [b], uidvalidity=5)])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        r, proto, _ = run_profile(archive, certs, hs)
    listed = archive.messages("alice")
    names = {m["hash"]: {loc["folder"] for loc in m["locations"]}
             for m in listed}
    files = archive.files()
    assert sha256(a) in files and sha256(b) in files, \
        "a folder was silently skipped: folders %r\n%s" % (names, r)
    assert names[sha256(a)] != names[sha256(b)], names


def test_distinct_8bit_folder_names_stay_distinct(archive, certs):
    """Folder names that are not modified UTF-7 are kept "under their raw
    name"; two such names must stay distinguishable in what the archive
    shows (messages --json), not both become "caf\ufffd"."""
    a, b = msg(211, b"e9\r\n"), msg(212, b"e8\r\n")
    srv = FakeImap([Folder(b"caf\xe9", [a]), Folder(b"caf\xe8", [b])])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        r, proto, _ = run_profile(archive, certs, hs)
    assert set(archive.files()) == {sha256(a), sha256(b)}, str(r)
    listed = archive.messages("alice")
    names = {m["hash"]: [loc["folder"] for loc in m["locations"]]
             for m in listed}
    assert names[sha256(a)] != names[sha256(b)], names
    for n in names.values():
        assert "\ufffd" not in n[0], "lossy folder name %r" % n


# ---- POP3 UIDLs ---------------------------------------------------------------------


HOSTILE_UIDLS = [
    b"",				# empty: no usable UIDL
    b"U" * 1000,			# far over the 70 of RFC 1939
    b"../../../../tmp/mailstow-uidl-escape",
    b"/etc/passwd",
    b"a/b/../c",
    b"dup",
    b"dup",				# the same UIDL twice
    b"ok-1",
]


def test_pop3_hostile_uidls(archive, certs, tmp_path):
    """UIDLs are index keys, never file names (mutt CVE-2018-14362):
    empty, 1000 bytes, with / or .., duplicated - every message is still
    archived exactly once, nothing is written outside the archive, and a
    second run retrieves only the messages without a usable UIDL (dedup
    then skips them)."""
    msgs = [pmsg(i) for i in range(len(HOSTILE_UIDLS))]
    srv = FakePop3(msgs, uidls=HOSTILE_UIDLS)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    escape = pathlib.Path("/tmp/mailstow-uidl-escape")
    existed = escape.exists()
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="pop3s")
        archive.write_config(prof)
        before = snapshot(tmp_path, archive.path)
        r1 = archive.cli("run", "--json", prof["name"], cwd=cwd)
        after = snapshot(tmp_path, archive.path)
        first = list(srv.retrieved)
        srv.retrieved.clear()
        r2, p2 = archive.run(prof["name"])
    p1 = r1.json()
    assert r1.rc in (0, 1), str(r1)
    assert sorted(set(after) - set(before)) == [str(archive.path)]
    assert os.listdir(cwd) == [] and escape.exists() == existed
    assert sorted(first) == list(range(1, len(msgs) + 1))
    assert set(archive.files()) == {sha256(m) for m in msgs}
    assert p1["counts"]["archived"] == len(msgs)
    warns = " ".join(event_texts(p1, "warning"))
    assert "UIDL" in warns, event_texts(p1)
    for t in event_texts(p1):
        assert no_control(t)
    # Second run: the messages with a good, unique UIDL are not retrieved.
    good = {i for i, u in enumerate(HOSTILE_UIDLS, 1)
            if u and len(u) <= 70 and HOSTILE_UIDLS.count(u) == 1}
    assert not good & set(srv.retrieved), srv.retrieved
    assert p2["counts"]["archived"] == 0, str(r2)
    assert len(archive.messages("alice")) == len(msgs)
