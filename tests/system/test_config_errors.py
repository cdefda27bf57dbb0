"""
test_config_errors.py - a bad config file is refused with exit status 2 and
an error that names FILE:LINE:COL of the offending spot and the key, before
anything touches a server or the archive; a good one passes `check`; every
password source (file, inline, systemd credential) works.

Each case below is YAML with "@@" before each spot the error may point at
(a key or its value; 1-based line and column).  "@@" nowhere: any spot.
"""

import os
import re

import pytest

import mailgen
from conftest import sha256, all_messages

SECRET = "Inline-S3cret-do-not-print"

HEAD = """\
archive:
  path: %ARCHIVE%
profiles:
"""

PROFILE = """\
  - name: good
    server:
      host: 127.0.0.1
      port: 993
      protocol: imaps
      timeout: 10s
      tls:
        ca_file: %CA%
    auth:
      user: alice
      password_file: %PW%
    folders:
      include: ["*"]
      exclude: [Trash]
    schedule: manual
"""


def edit(text, old, new):
    assert old in text, old
    return text.replace(old, new, 1)


def profile(*edits):
    t = PROFILE
    for old, new in edits:
        t = edit(t, old, new)
    return t


CASES = {
    "unknown key": (HEAD + profile(
        ("    schedule: manual\n",
         "    schedule: manual\n    @@colour: blue\n")), "colour"),
    "unknown nested key": (HEAD + profile(
        ("        ca_file: %CA%\n",
         "        ca_file: %CA%\n        @@ca_flie: /etc/ssl/x.pem\n")),
        "ca_flie"),
    "port not a number": (HEAD + profile(
        ("      port: 993", "      @@port: @@abc")), "port"),
    "port out of range": (HEAD + profile(
        ("      port: 993", "      @@port: @@70000")), "port"),
    "timeout not a duration": (HEAD + profile(
        ("      timeout: 10s", "      @@timeout: @@soon")), "timeout"),
    "boolean expected": (HEAD + profile(
        ("      password_file: %PW%\n",
         "      password_file: %PW%\n      @@allow_plaintext: @@maybe\n")),
        "allow_plaintext"),
    "list expected": (HEAD + profile(
        ('      include: ["*"]', "      @@include: @@{all: yes}")),
        "include"),
    "unknown protocol": (HEAD + profile(
        ("      protocol: imaps", "      @@protocol: @@imap4")),
        "protocol"),
    "missing password source": (HEAD + profile(
        ("    auth:\n      user: alice\n      password_file: %PW%\n",
         "    @@auth:\n      @@user: alice\n")), "password"),
    "two password sources": (HEAD + profile(
        ("    auth:\n      user: alice\n      password_file: %PW%\n",
         "    @@auth:\n      @@user: alice\n      @@password_file: %PW%\n"
         "      @@password: @@\"" + SECRET + "\"\n")), "password"),
    "plaintext without allow_plaintext": (HEAD + profile(
        ("      protocol: imaps", "      @@protocol: @@imap"),
        ("      tls:\n        ca_file: %CA%\n", ""),
        ("    auth:\n      user", "    @@auth:\n      @@user")),
        "allow_plaintext"),
    "verify false without insecure_i_know": (HEAD + profile(
        ("      tls:\n        ca_file: %CA%\n",
         "      @@tls:\n        @@verify: @@false\n")), "insecure_i_know"),
    "archive path missing": (HEAD.replace("archive:\n  path: %ARCHIVE%",
                                          "@@archive: @@{}") + PROFILE,
                             "path"),
    "duplicate profile name": (HEAD + PROFILE + profile(
        ("  - name: good", "  @@- @@name: @@good")), "good"),
    "profile without name": (HEAD + profile(
        ("  - name: good\n    server:", "  @@- @@server:")), "name"),
    "yaml syntax error": (HEAD + profile(
        ('      include: ["*"]', '      include: ["*"')), None),
}


def spots(text):
    """Text without markers, and the 1-based (line, col) of each marker."""
    out, marks = [], []
    line, col = 1, 1
    i = 0
    while i < len(text):
        if text.startswith("@@", i):
            marks.append((line, col))
            i += 2
            continue
        ch = text[i]
        out.append(ch)
        if ch == "\n":
            line, col = line + 1, 1
        else:
            col += 1
        i += 1
    return "".join(out), marks


def materialize(archive, certs, template, mode=0o600):
    pw = archive.password_file("good", "file-S3cret")
    text = (template.replace("%ARCHIVE%", str(archive.path))
            .replace("%CA%", certs.ca).replace("%PW%", str(pw)))
    text, marks = spots(text)
    archive.config.write_text(text)
    os.chmod(archive.config, mode)
    return marks


def positions(result, path):
    return [(int(a), int(b)) for a, b in
            re.findall(re.escape(str(path)) + r":(\d+):(\d+)", result.stderr)]


def check_config_error(result, path, marks, key):
    assert result.rc == 2, str(result)
    found = positions(result, path)
    assert found, "no %s:LINE:COL on stderr\n%s" % (path, result)
    if marks:
        assert set(found) & set(marks), \
            "error points at %s, expected one of %s\n%s" % (found, marks,
                                                           result)
    if key:
        assert key in result.stderr, str(result)
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_error(archive, certs, case):
    template, key = CASES[case]
    marks = materialize(archive, certs, template)
    r = archive.cli("check")
    check_config_error(r, archive.config, marks, key)
    assert not archive.path.exists(), "check created the archive"


def test_inline_password_in_readable_file(archive, certs):
    template = HEAD + profile(
        ("      password_file: %PW%",
         '      @@password: @@"' + SECRET + '"'))
    marks = materialize(archive, certs, template, mode=0o644)
    r = archive.cli("check")
    check_config_error(r, archive.config, marks, "password")
    assert not archive.path.exists()


def test_config_error_stops_run(archive, certs):
    marks = materialize(archive, certs, CASES["unknown key"][0])
    r = archive.cli("run", "good")
    check_config_error(r, archive.config, marks, "colour")
    assert not archive.path.exists(), "a bad config still touched the archive"


def test_good_config_checks(archive, certs):
    materialize(archive, certs, HEAD + PROFILE)
    r = archive.cli("check")
    assert r.rc == 0, str(r)
    assert r.stderr.strip() == "" or "error" not in r.stderr.lower(), str(r)


def test_password_file_readable_by_others_is_refused(dovecot, archive):
    user = dovecot.add_user()
    dovecot.deliver(user, "INBOX", mailgen.MailGen(seed=8).message().raw)
    prof = archive.profile(dovecot, user)
    os.chmod(prof["auth"]["password_file"], 0o644)
    archive.write_config(prof)
    r = archive.cli("run", prof["name"])
    assert r.rc in (1, 2), str(r)
    out = (r.stdout + r.stderr).lower()
    assert prof["auth"]["password_file"].lower() in out, str(r)
    assert any(k in out for k in ("0600", "permission", "readable", "mode"))
    assert archive.files() == {}
    assert not dovecot.login_attempted(user)
    archive.assert_secret_absent(user.password)


@pytest.mark.parametrize("source", ["password_file", "password",
                                    "password_credential"])
def test_password_sources(dovecot, archive, source):
    user = dovecot.add_user()
    dovecot.append(user, "INBOX", mailgen.MailGen(seed=9).message().raw)
    prof = archive.profile(dovecot, user)
    env = {}
    if source == "password":
        prof["auth"].pop("password_file")
        prof["auth"]["password"] = user.password
    elif source == "password_credential":
        creds = archive.dir / "credentials"
        creds.mkdir(mode=0o700)
        (creds / "imap-pw").write_text(user.password)
        os.chmod(creds / "imap-pw", 0o600)
        prof["auth"].pop("password_file")
        prof["auth"]["password_credential"] = "imap-pw"
        env["CREDENTIALS_DIRECTORY"] = str(creds)
    archive.write_config(prof)
    r, proto = archive.run(prof["name"], env=env)
    assert r.rc == 0 and proto["status"] == "succeeded", str(r)
    raw = all_messages(dovecot.fetch_all(user))
    assert archive.files() == {sha256(raw[0]): raw[0]}
    s = archive.cli("protocol", "--last", prof["name"], "--json")
    assert s.rc == 0, str(s)
    archive.assert_secret_absent(user.password)
