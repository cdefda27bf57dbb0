"""
test_systemd_unit.py - the shipped systemd files: mailstowd.service passes
`systemd-analyze verify` (with ExecStart pointed at the built binary) and
`systemd-analyze security --offline=yes` rates it 2.0 or lower; the unit
has the settings the service protocol depends on; the sysusers and
tmpfiles snippets parse.
"""

import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, REPO

SYSTEMD = REPO / "systemd"
UNIT = SYSTEMD / "mailstowd.service"
ANALYZE = shutil.which("systemd-analyze")
MAX_EXPOSURE = 2.0

pytestmark = pytest.mark.skipif(ANALYZE is None,
                                reason="systemd-analyze is not installed "
                                "(apt-get install systemd)")


def unit_settings():
    out = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out.setdefault(k, []).append(v)
    return out


def local_copy(tmp_path):
    """The unit with ExecStart at the built binary (verify wants it to
    exist)."""
    binary = BUILD / "mailstowd"
    if not os.access(binary, os.X_OK):
        pytest.fail("%s is not built" % binary)
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/sbin/mailstowd " in text
    text = text.replace("ExecStart=/usr/local/sbin/mailstowd ",
                        "ExecStart=%s " % binary)
    p = tmp_path / "mailstowd.service"
    p.write_text(text)
    return p


def analyze(*args):
    return subprocess.run([ANALYZE] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=120)


def test_unit_verifies(tmp_path):
    p = local_copy(tmp_path)
    # --man=no: the man pages are not installed in the test tree.
    r = analyze("verify", "--man=no", p)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mailstowd.service" not in r.stderr, r.stderr


def test_unit_security_exposure(tmp_path):
    p = local_copy(tmp_path)
    r = analyze("security", "--offline=yes", "--no-pager", p)
    text = r.stdout + r.stderr
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", text)
    assert m, "no exposure level in:\n" + text
    level = float(m.group(1))
    assert level <= MAX_EXPOSURE, "exposure %.1f > %.1f\n%s" % (
        level, MAX_EXPOSURE, text)


def test_unit_service_protocol():
    s = unit_settings()
    assert s["Type"] == ["notify"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["ExecStart"][0].startswith("/usr/local/sbin/mailstowd ")
    assert re.fullmatch(r"\d+s", s["WatchdogSec"][0])
    assert s["User"] == ["mailstow"] or s.get("DynamicUser") == ["yes"]
    for k in ("StateDirectory", "ConfigurationDirectory", "RuntimeDirectory"):
        assert s[k] == ["mailstow"], k
    assert s["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert s["CapabilityBoundingSet"] == [""]
    assert "@system-service" in s["SystemCallFilter"]


def test_sysusers_and_tmpfiles_snippets(tmp_path):
    users = (SYSTEMD / "mailstow.sysusers").read_text()
    assert re.search(r"^u mailstow\s", users, re.M)
    tmpfiles = (SYSTEMD / "mailstow.tmpfiles").read_text()
    assert re.search(r"^d /run/mailstow\s", tmpfiles, re.M)
    # systemd-sysusers / systemd-tmpfiles parse them against a scratch root.
    sysusers = shutil.which("systemd-sysusers")
    if sysusers:
        (tmp_path / "etc").mkdir()
        r = subprocess.run([sysusers, "--root", str(tmp_path),
                            str(SYSTEMD / "mailstow.sysusers")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert re.search(r"^mailstow:", (tmp_path / "etc/passwd").read_text(),
                         re.M)
    tmpf = shutil.which("systemd-tmpfiles")
    if tmpf:
        r = subprocess.run([tmpf, "--root", str(tmp_path), "--create",
                            str(SYSTEMD / "mailstow.tmpfiles")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "run/mailstow").is_dir()
