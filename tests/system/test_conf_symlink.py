"""
test_conf_symlink.py - a config file reached through a symlink owned by
someone else (neither root nor the user mailstow runs as) is refused, as a
password file is: whoever owns the link chooses which profiles, servers
and password files mailstow uses.  `mailstow run` and `check`, and
mailstowd at start and on SIGHUP, refuse the main file and a conf.d file
through such a link with a message naming the link and the fix, and
connect nowhere; the same link owned by us is followed.  Links are given
away with lchown(2), which needs root.
"""

import os
import pathlib
import signal
import subprocess

import pytest

import hostile
from conftest import run_mailstow
from hostile import FakeImap, Folder, HostileServer
from test_daemon import (MAILSTOWD, daemons, sockdir,  # noqa: F401
                         write_config)

NOBODY = 65534
MSGS = [b"Subject: link %d\r\nMessage-ID: <l%d@hostile>\r\n\r\nbody\r\n"
        % (i, i) for i in range(2)]


@pytest.fixture(autouse=True)
def need_root():
    if os.geteuid() != 0:
        pytest.skip("lchown(2) to another user needs root")


def give_away(link):
    os.lchown(link, NOBODY, NOBODY)
    assert os.lstat(link).st_uid == NOBODY


def take_back(link):
    os.lchown(link, os.geteuid(), os.getegid())


def assert_refused(r, link):
    assert r.rc == 2, str(r)
    err = r.stderr
    assert "%s: a symlink owned by uid %d" % (link, NOBODY) in err, str(r)
    assert "replace it with the" in err, str(r)


def test_config_symlink_owned_by_someone_else_refused(archive, certs,
                                                       tmp_path):
    with HostileServer(FakeImap([Folder("INBOX", MSGS)]), tls="implicit",
                       cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, name="alice")
        archive.write_config(prof)
        link = tmp_path / "link.yaml"
        link.symlink_to(archive.config)
        give_away(link)
        refused = [run_mailstow("-c", link, *args) for args in
                   (["run", "--json", "alice"], ["check"])]
        # Our own link to the same file is followed.
        take_back(link)
        ok = run_mailstow("-c", link, "run", "--json", "alice")
    for r in refused:
        assert_refused(r, link)
    assert ok.rc == 0, str(ok)
    assert ok.json()["counts"]["archived"] == len(MSGS), str(ok)
    assert len(hs.conns) == 1, "connected through a foreign symlink"


def test_foreign_link_later_in_a_chain_refused(archive, certs, tmp_path):
    """Every link of a chain keeps the rule: our link to someone else's
    link to the config is refused at the foreign one, for the config and
    for a password file."""
    with HostileServer(FakeImap([Folder("INBOX", MSGS)]), tls="implicit",
                       cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, name="alice")
        archive.write_config(prof)
        theirs = tmp_path / "theirs.yaml"
        theirs.symlink_to(archive.config)
        ours = tmp_path / "ours.yaml"
        ours.symlink_to(theirs)
        give_away(theirs)
        r = run_mailstow("-c", ours, "check")
        # The same chain in front of the password file.
        pw = pathlib.Path(prof["auth"]["password_file"])
        pw_theirs = tmp_path / "pw-theirs"
        pw_theirs.symlink_to(pw)
        pw_ours = tmp_path / "pw-ours"
        pw_ours.symlink_to(pw_theirs)
        give_away(pw_theirs)
        prof["auth"]["password_file"] = str(pw_ours)
        archive.write_config(prof)
        r_pw = archive.cli("run", "--json", "alice")
        take_back(theirs)
        take_back(pw_theirs)
        ok = run_mailstow("-c", ours, "run", "--json", "alice")
    assert r.rc == 2, str(r)
    assert "%s: reached through %s, a symlink owned by uid %d" % (
        ours, theirs, NOBODY) in r.stderr, str(r)
    assert "replace that link with the file itself" in r.stderr, str(r)
    assert r_pw.rc != 0, str(r_pw)
    assert "reached through %s, a symlink owned by uid %d" % (
        pw_theirs, NOBODY) in \
        r_pw.out.decode() + r_pw.stderr, str(r_pw)
    assert ok.rc == 0, str(ok)
    assert ok.json()["counts"]["archived"] == len(MSGS), str(ok)
    assert len(hs.conns) == 1, "connected through a foreign symlink"


def test_confd_symlink_owned_by_someone_else_refused(archive, certs,
                                                      tmp_path):
    with HostileServer(FakeImap([Folder("INBOX", MSGS)]), tls="implicit",
                       cert=certs.server) as hs:
        main = hostile.profile(archive, hs, certs, name="main")
        extra = hostile.profile(archive, hs, certs, name="extra")
        archive.write_config(main)
        # The extra profile, written as a conf.d file elsewhere...
        archive.write_config(extra)
        elsewhere = tmp_path / "extra.yaml"
        text = archive.config.read_text()
        elsewhere.write_text("profiles:" + text.split("profiles:", 1)[1])
        os.chmod(elsewhere, 0o600)
        archive.write_config(main)
        # ... and linked into conf.d.
        confd = archive.config.parent / "conf.d"
        confd.mkdir()
        link = confd / "extra.yaml"
        link.symlink_to(elsewhere)
        give_away(link)
        refused = [archive.cli(*args) for args in
                   (["run", "--json", "extra"], ["run", "--json", "main"],
                    ["check"])]
        take_back(link)
        ok = archive.cli("run", "--json", "extra")
    for r in refused:
        assert_refused(r, link)
    assert ok.rc == 0, str(ok)
    assert ok.json()["counts"]["archived"] == len(MSGS), str(ok)
    assert len(hs.conns) == 1, "connected through a foreign symlink"


def test_daemon_refuses_foreign_config_symlink(archive, certs, daemons,
                                               sockdir):
    prof = hostile.profile(archive, 1, certs, name="idle")
    conf = write_config(archive, sockdir / "ctl", prof)
    link = sockdir / "link.yaml"
    link.symlink_to(conf)
    give_away(link)
    # At start: mailstowd exits, saying why.
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM",
                        "MAILSTOW_JOURNAL_SOCKET")}
    p = subprocess.Popen([str(MAILSTOWD), "-c", str(link)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        pytest.fail("mailstowd started through a foreign symlink:\n%s"
                    % err.decode(errors="replace"))
    err = err.decode(errors="replace")
    assert p.returncode != 0, err
    assert "%s: a symlink owned by uid %d" % (link, NOBODY) in err, err
    assert "replace it with the file itself" in err, err
    # On SIGHUP: the reload fails and the running config stays.
    take_back(link)
    d = daemons(link, journal=False)
    d.wait_note("READY=1", timeout=15)
    give_away(link)
    n = len(d.notes())
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"reload failed.*%s: a symlink owned by uid %d"
               % (str(link).replace(".", r"\."), NOBODY))
    assert d.proc.poll() is None, d.stderr
    st = run_mailstow("-c", conf, "status")
    assert st.rc == 0 and "idle" in st.stdout, str(st)
    take_back(link)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_note("READY=1", start=n, timeout=15)
    assert d.stop()[0] == 0
