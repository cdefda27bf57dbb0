#!/usr/bin/python3
"""
demo.py - `make demo`: start a throwaway Dovecot on 127.0.0.1 (the system
test harness), give user "demo" a sample mailbox, archive it with
`mailstow run demo` using conf/demo.yaml, print the protocol and where the
archive is, then stop Dovecot.  The archive stays for you to look at.

Environment: BUILD (directory holding mailstow, default build),
MAILSTOW_DEMO_DIR (default /tmp/mailstow-demo; wiped at the start, but only
if an earlier demo made it).  Exit status: mailstow's.
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "system"))
import dovecot as harness  # noqa: E402
import mailgen  # noqa: E402

MARKER = ".mailstow-demo"


def fresh_dir(root):
    if root.exists():
        if not (root / MARKER).exists():
            sys.stderr.write("demo: %s exists and was not made by the demo;"
                             " set MAILSTOW_DEMO_DIR elsewhere\n" % root)
            sys.exit(2)
        harness.Dovecot.stop_leftover(root / "dovecot")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("made by tests/demo.py\n")
    os.chmod(root, 0o755)


def write_config(root, d, password_file):
    text = (REPO / "conf" / "demo.yaml").read_text()
    for k, v in (("@ARCHIVE@", root / "archive"),
                 ("@PORT@", d.ports["imaps"]),
                 ("@CA_FILE@", d.ca_file),
                 ("@PASSWORD_FILE@", password_file)):
        text = text.replace(k, str(v))
    conf = root / "mailstow.yaml"
    conf.write_text(text)
    os.chmod(conf, 0o600)
    return conf


def main():
    build = pathlib.Path(os.environ.get("BUILD") or "build")
    if not build.is_absolute():
        build = REPO / build
    exe = build / "mailstow"
    if not os.access(exe, os.X_OK):
        sys.stderr.write("demo: %s not found; run make first\n" % exe)
        return 2
    shown = os.path.relpath(exe) if str(exe).startswith(os.getcwd()) \
        else str(exe)
    root = pathlib.Path(os.environ.get("MAILSTOW_DEMO_DIR") or
                        "/tmp/mailstow-demo").resolve()
    fresh_dir(root)

    d = harness.Dovecot(root / "dovecot")
    d.start()
    try:
        t0 = time.monotonic()
        user = d.add_user("demo")
        layout = mailgen.standard_mailbox(seed=2024, big=256 * 1024)
        d.seed(user, layout)
        server = d.fetch_all(user)
        n = sum(len(v) for v in server.values())
        print("demo: Dovecot %.2fs, seeded %d messages in %d folders (%s) "
              "in %.2fs" % (d.startup_seconds, n, len(server),
                            ", ".join(sorted(server)),
                            time.monotonic() - t0))
        pw = root / "demo.password"
        pw.write_text(user.password + "\n")
        os.chmod(pw, 0o600)
        conf = write_config(root, d, pw)
        print("demo: $ %s -c %s run demo\n" % (shown, conf), flush=True)
        rc = subprocess.call([str(exe), "-c", str(conf), "run", "demo"])
        welcome = hashlib.sha256(server["INBOX"][1]).hexdigest()
    finally:
        d.stop()

    print("\ndemo: mailstow exited %d; Dovecot stopped." % rc)
    print("demo: archive in %s (config %s); try:" % (root / "archive", conf))
    for args in ("runs", "protocol --last demo", "protocol --last demo --json",
                 "messages demo --folder INBOX", "show " + welcome):
        print("    %s -c %s %s" % (shown, conf, args))
    return rc


if __name__ == "__main__":
    sys.exit(main())
