"""
test_cli.py - the reading side of the command line (runs, protocol,
messages, show), where the config comes from, exit statuses for usage
errors, and runs of several profiles in one call.
"""

import os
import re
import types

import pytest

import mailgen
from conftest import Archive, MAILSTOW, run_mailstow, sha256, all_messages
from dovecot import free_port

ZERO_HASH = "0" * 64


@pytest.fixture(scope="module")
def hist(dovecot, tmp_path_factory):
    """An archive with runs alpha, beta, alpha (in that order)."""
    arc = Archive(tmp_path_factory.mktemp("cli"))
    layout = mailgen.standard_mailbox(seed=31, big=0)
    u1 = dovecot.add_user()
    dovecot.seed(u1, layout)
    u2 = dovecot.add_user()
    g = mailgen.MailGen(seed=32)
    dovecot.seed(u2, mailgen.Layout({"INBOX": [g.message() for _ in "abc"]},
                                    []))
    pa = arc.profile(dovecot, u1, name="alpha")
    pb = arc.profile(dovecot, u2, name="beta")
    arc.write_config(pa, pb)
    h = types.SimpleNamespace(archive=arc, user=u1, layout=layout,
                              server=dovecot.fetch_all(u1), runs=[],
                              problem=None)
    if not os.access(MAILSTOW, os.X_OK):
        h.problem = "%s is not built" % MAILSTOW
        return h
    for name in ("alpha", "beta", "alpha"):
        r = arc.cli("run", "--json", name)
        if r.rc != 0:
            h.problem = "setup run failed\n%s" % r
            return h
        h.runs.append(r.json())
    return h


def ready(h):
    if h.problem:
        pytest.fail(h.problem)
    return h.archive


def test_runs_json_lists_every_run_newest_first(hist):
    arc = ready(hist)
    r = arc.cli("runs", "--json")
    assert r.rc == 0, str(r)
    runs = r.json()
    ids = [x["run"] for x in runs]
    assert ids == sorted(ids, reverse=True)
    assert ids == [p["run"] for p in reversed(hist.runs)]
    for x, p in zip(runs, reversed(hist.runs)):
        assert x["profile"] == p["profile"]
        assert x["status"] == "succeeded"
        assert x["counts"] == p["counts"]
        assert x["started"] == p["started"]


def test_runs_filtered_by_profile(hist):
    arc = ready(hist)
    r = arc.cli("runs", "--profile", "alpha", "--json")
    assert r.rc == 0, str(r)
    assert [x["run"] for x in r.json()] == [hist.runs[2]["run"],
                                            hist.runs[0]["run"]]
    t = arc.cli("runs", "--profile", "beta")
    assert t.rc == 0, str(t)
    assert "beta" in t.stdout and "alpha" not in t.stdout


def test_runs_text(hist):
    arc = ready(hist)
    r = arc.cli("runs")
    assert r.rc == 0, str(r)
    for p in hist.runs:
        assert re.search(r"\b%d\b" % p["run"], r.stdout), str(r)
    assert "alpha" in r.stdout and "beta" in r.stdout
    assert "succeeded" in r.stdout


def test_protocol_last_is_the_newest_run(hist):
    arc = ready(hist)
    r = arc.cli("protocol", "--last", "alpha", "--json")
    assert r.rc == 0, str(r)
    assert r.json() == hist.runs[2]


def test_protocol_by_run_id(hist):
    arc = ready(hist)
    first = hist.runs[0]
    r = arc.cli("protocol", str(first["run"]), "--json")
    assert r.rc == 0, str(r)
    assert r.json() == first
    t = arc.cli("protocol", str(first["run"]))
    assert t.rc == 0, str(t)
    assert "alpha" in t.stdout and "succeeded" in t.stdout
    assert str(first["counts"]["archived"]) in t.stdout


def test_protocol_of_unknown_run(hist):
    arc = ready(hist)
    r = arc.cli("protocol", "987654")
    assert r.rc != 0, str(r)
    assert r.stdout.strip() == ""
    assert "987654" in r.stderr or "no such" in r.stderr.lower() or \
        "not found" in r.stderr.lower(), r


def test_messages_of_one_folder(hist):
    arc = ready(hist)
    for folder in ("Entwürfe", "Archive/2024", "日本語"):
        msgs = arc.messages(hist.user.name, folder=folder)
        want = {sha256(raw) for raw in hist.server[folder].values()}
        assert {m["hash"] for m in msgs} == want, folder
        assert len(msgs) == len(want), "listed twice in %s" % folder
        for m in msgs:
            assert folder in [l["folder"] for l in m["locations"]]


def test_messages_fields(hist):
    arc = ready(hist)
    msgs = {m["hash"]: m for m in arc.messages(hist.user.name)}
    distinct = set(all_messages(hist.server))
    assert set(msgs) == {sha256(raw) for raw in distinct}
    for folder, gen in hist.layout.messages():
        m = msgs[sha256(gen.raw)]
        assert m["size"] == len(gen.raw)
        assert m["message_id"].strip("<> ") == gen.message_id
        assert m["subject"] == gen.subject, "subject not decoded?"
        assert m["first_run"] == hist.runs[0]["run"]
        assert m["internaldate"] is not None
        assert m["date"] and m["from"] and "@" in m["from"]
        assert m["to"] and "@" in m["to"]


def test_messages_text(hist):
    arc = ready(hist)
    r = arc.cli("messages", hist.user.name)
    assert r.rc == 0, str(r)
    assert "Welcome to the archive" in r.stdout
    assert "Grüße aus München" in r.stdout


def test_show_unknown_hash(hist):
    arc = ready(hist)
    r = arc.cli("show", ZERO_HASH)
    assert r.rc != 0, str(r)
    assert r.out == b""
    err = r.stderr.lower()
    assert ZERO_HASH in err or "not found" in err or "no such" in err or \
        "unknown" in err, r


def test_show_malformed_hash(hist):
    arc = ready(hist)
    r = arc.cli("show", "../../index.sqlite")
    assert r.rc != 0, str(r)
    assert r.out == b"" and r.stderr.strip(), str(r)


def test_unknown_profile(hist):
    arc = ready(hist)
    r = arc.cli("run", "nosuchprofile")
    assert r.rc == 2, str(r)
    assert "nosuchprofile" in r.stderr, str(r)
    runs = arc.cli("runs", "--json")
    assert len(runs.json()) == len(hist.runs), "a run was recorded anyway"


def test_no_such_config_file(tmp_path):
    missing = tmp_path / "nope" / "mailstow.yaml"
    for args in (["check"], ["runs"], ["run", "x"]):
        r = run_mailstow("-c", missing, *args)
        assert r.rc == 2, str(r)
        assert str(missing) in r.stderr, str(r)


def test_config_from_environment(hist):
    arc = ready(hist)
    r = run_mailstow("runs", "--json",
                     env={"MAILSTOW_CONFIG": str(arc.config)})
    assert r.rc == 0, str(r)
    assert len(r.json()) == len(hist.runs)


@pytest.mark.skipif(os.path.exists("/etc/mailstow/mailstow.yaml"),
                    reason="a system config exists here")
def test_default_config_path():
    r = run_mailstow("runs")
    assert r.rc == 2, str(r)
    assert "/etc/mailstow/mailstow.yaml" in r.stderr, str(r)


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["run"],
                                  ["runs", "--bogus-flag"],
                                  ["protocol"]],
                         ids=["none", "unknown", "run-no-profile",
                              "bad-flag", "protocol-no-run"])
def test_usage_errors(hist, args):
    arc = ready(hist)
    r = run_mailstow("-c", arc.config, *args)
    assert r.rc == 2, str(r)
    assert r.stderr.strip(), str(r)


def test_run_several_profiles(dovecot, archive):
    profs = []
    for i in range(2):
        u = dovecot.add_user()
        dovecot.append(u, "INBOX", mailgen.MailGen(seed=50 + i).message().raw)
        profs.append(archive.profile(dovecot, u, name="good%d" % i))
    bad_user = dovecot.add_user()
    bad = archive.profile(dovecot, bad_user, name="bad",
                          server={"port": free_port()})
    archive.write_config(*profs, bad)

    r = archive.cli("run", "good0", "good1")
    assert r.rc == 0, str(r)
    assert "good0" in r.stdout and "good1" in r.stdout
    assert r.stdout.count("succeeded") >= 2, str(r)

    r = archive.cli("run", "bad", "good0")
    assert r.rc == 1, str(r)
    assert "bad" in r.stdout and "good0" in r.stdout
    runs = archive.cli("runs", "--json")
    assert runs.rc == 0, str(runs)
    status = [(x["profile"], x["status"]) for x in runs.json()]
    assert len(status) == 4, status
    assert ("bad", "failed") in status
    assert status.count(("good0", "succeeded")) == 2
    assert len(archive.files()) == 2
