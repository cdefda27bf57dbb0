"""
bench_tools.py - what the bench runs and checks: the server (Dovecot with
a rawlog), mailstow, mbsync and mpop with their configs, and the checks
that every timed run succeeded and archived every message.
"""

import hashlib
import json
import os
import shutil
import subprocess
import time

from bench_measure import HERE, measure, parse_protocols  # sets sys.path
import dovecot as harness  # noqa: E402


# ---- the server -----------------------------------------------------------


class BenchDovecot(harness.Dovecot):
    """The system tests' Dovecot plus a rawlog directory: Dovecot writes a
    user's rawlog only while rawlog/<user> exists, so the timed runs pay
    nothing for it."""

    def _config(self):
        return super()._config() + "rawlog_dir = %s/rawlog/%%u\n" % self.root

    def owner(self):
        st = os.stat(self.maildir)
        return st.st_uid, st.st_gid

    def mail_root(self, user):
        home = self.maildir / user
        if not home.exists():
            home.mkdir(mode=0o700)
            os.chown(home, *self.owner())
        return home / "Maildir"

    def rawlog_on(self, user):
        d = self.root / "rawlog" / user
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        os.chown(d, *self.owner())
        return d

    def rawlog_off(self, user):
        shutil.rmtree(self.root / "rawlog" / user, ignore_errors=True)



def warm_server(dc, user):
    """Build Dovecot's index and pull the files into the page cache, so the
    first timed run does not pay for what the later ones find ready."""
    c = dc.imap_connect(user)
    try:
        for folder in dc.folders(user, c):
            typ, data = c.select(harness.imap_mailbox(folder), readonly=True)
            if typ == "OK" and int(data[0]) > 0:
                c.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE)")
            c.close()
    finally:
        c.logout()
    for p in dc.mail_root(user).rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                while f.read(1 << 20):
                    pass


# ---- the tools --------------------------------------------------------------


def yaml_str(s):
    return json.dumps(str(s), ensure_ascii=False)


class Mailstow:
    def __init__(self, bench, name):
        self.b = bench
        self.dir = bench.work / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.archive = self.dir / "archive"
        self.config = self.dir / "mailstow.yaml"

    def write_config(self, users, protocol="imaps"):
        dc = self.b.dc
        port = dc.ports["imaps" if protocol == "imaps" else "pop3s"]
        lines = ["# written by tests/bench/bench.py", "archive:",
                 "  path: %s" % yaml_str(self.archive), "profiles:"]
        for u in users:
            pw = self.dir / ("%s.password" % u)
            pw.write_text(dc.users[u].password + "\n")
            os.chmod(pw, 0o600)
            lines += [
                "  - name: %s" % u,
                "    server: {host: 127.0.0.1, port: %d, protocol: %s, "
                "timeout: 120s, tls: {ca_file: %s}}"
                % (port, protocol, yaml_str(dc.ca_file)),
                "    auth: {user: %s, password_file: %s}" % (u, yaml_str(pw)),
                "    schedule: manual"]
            if protocol == "imaps":
                lines.insert(-1, '    folders: {include: ["*"]}')
        self.config.write_text("\n".join(lines) + "\n")
        os.chmod(self.config, 0o600)

    def write_batch_config(self, name, users, parallel):
        """One batch profile over `users`, each with its password file,
        up to `parallel` sessions at once."""
        dc = self.b.dc
        lines = ["# written by tests/bench/bench.py", "archive:",
                 "  path: %s" % yaml_str(self.archive), "profiles:",
                 "  - name: %s" % name,
                 "    server: {host: 127.0.0.1, port: %d, protocol: imaps, "
                 "timeout: 120s, tls: {ca_file: %s}}"
                 % (dc.ports["imaps"], yaml_str(dc.ca_file)),
                 "    auth: {}",
                 "    mailboxes:"]
        for u in users:
            pw = self.dir / ("%s.password" % u)
            pw.write_text(dc.users[u].password + "\n")
            os.chmod(pw, 0o600)
            lines.append("      - {user: %s, password_file: %s}"
                         % (u, yaml_str(pw)))
        lines += ["    max_parallel: %d" % parallel,
                  '    folders: {include: ["*"]}',
                  "    schedule: manual"]
        self.config.write_text("\n".join(lines) + "\n")
        os.chmod(self.config, 0o600)

    def config_ok(self):
        """Does this mailstow accept the config (`mailstow check`)?"""
        r = subprocess.run([str(self.b.mailstow), "-c", str(self.config),
                            "check"], capture_output=True, text=True)
        return r.returncode == 0, r.stderr.strip()

    def argv(self, users, verbose=False):
        return [self.b.mailstow, "-c", self.config] + \
            (["-v"] if verbose else []) + ["run", "--json"] + list(users)

    def wipe(self):
        self.b.aside(self.archive)

    def run(self, users, prefix=(), probe=False):
        env = None
        if probe:
            env = dict(os.environ, MAILSTOW_LOOP_PROBE="1")
        if prefix:
            # LeakSanitizer cannot run under ptrace (strace): a SANITIZE=1
            # build would fail at exit.
            env = dict(env or os.environ)
            env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                                   ":detect_leaks=0").lstrip(":")
        s = measure(list(prefix) + self.argv(users), self.dir, env=env)
        s.protocols = parse_protocols(s.out)
        return s



def peer_config(dc, where, user, template, rc, **subs):
    """A peer's config from tests/bench/<template>: @USER@, @PASSFILE@
    (a 0600 file in `where`) and @CAFILE@ filled in, and @KEY@ for each
    of `subs`; written to `rc`, mode 0600."""
    pw = where / "password"
    pw.write_text(dc.users[user].password + "\n")
    os.chmod(pw, 0o600)
    text = (HERE / template).read_text()
    subs = dict(subs, USER=user, PASSFILE=pw, CAFILE=dc.ca_file)
    for k, v in subs.items():
        text = text.replace("@%s@" % k, str(v))
    rc.write_text(text)
    os.chmod(rc, 0o600)


class Mbsync:
    """mbsync pulling the whole account into a Maildir, FSync on."""

    def __init__(self, bench, name, user):
        self.b = bench
        self.dir = bench.work / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.near = self.dir / "maildir"
        self.rc = self.dir / "mbsyncrc"
        self.last_end = 0.0
        # mbsync checks only DNS names in the certificate: localhost.
        peer_config(bench.dc, self.dir, user, "mbsyncrc.in", self.rc,
                    HOST="localhost", PORT=bench.dc.ports["imaps"],
                    NEAR=self.near)

    def wipe(self):
        self.b.aside(self.near)
        self.near.mkdir()

    def argv(self):
        return ["mbsync", "-c", self.rc, "-a", "-q"]

    def run(self):
        # mbsync sleeps into the next second when its Maildir changed in
        # the current one (it cannot trust the directory's mtime then);
        # scheduled runs are minutes apart, so give it that second.
        pause = self.last_end + 1.1 - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        s = measure(self.argv(), self.dir)
        self.last_end = time.monotonic()
        return s

    def count(self):
        return sum(1 for p in self.near.rglob("*")
                   if p.parent.name in ("cur", "new") and p.is_file())


class Mpop:
    """mpop retrieving the inbox over POP3S into a Maildir, keeping the
    messages on the server."""

    def __init__(self, bench, name, user):
        self.b = bench
        self.dir = bench.work / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.md = self.dir / "maildir"
        self.uidls = self.dir / "uidls"
        self.rc = self.dir / "mpoprc"
        peer_config(bench.dc, self.dir, user, "mpoprc.in", self.rc,
                    HOST="127.0.0.1", PORT=bench.dc.ports["pop3s"],
                    MAILDIR=self.md, UIDLS=self.uidls)

    def wipe(self):
        self.b.aside(self.md)
        for d in ("cur", "new", "tmp"):
            (self.md / d).mkdir(parents=True)
        if self.uidls.exists():
            self.uidls.unlink()

    def run(self):
        s = measure(["mpop", "-C", self.rc, "-a", "-q"], self.dir)
        return s

    def count(self):
        return sum(1 for d in ("cur", "new") for _ in (self.md / d).iterdir())


# ---- checks ---------------------------------------------------------------


class BenchError(Exception):
    pass


def check_ok(s, what):
    if s.rc != 0:
        raise BenchError("%s failed\n%s" % (what, s))


def check_protocols(s, expect, what):
    """expect: [(profile, found, archived, skipped)] (None: any)."""
    check_ok(s, what)
    if len(s.protocols) != len(expect):
        raise BenchError("%s printed %d protocols, expected %d\n%s"
                         % (what, len(s.protocols), len(expect), s))
    for p, (name, found, archived, skipped) in zip(s.protocols, expect):
        c = p["counts"]
        bad = p["profile"] != name or p["status"] != "succeeded" or \
            c["failed"] != 0 or \
            (found is not None and c["found"] != found) or \
            (archived is not None and c["archived"] != archived) or \
            (skipped is not None and c["skipped"] != skipped) or \
            c["found"] != c["archived"] + c["skipped"]
        if bad:
            raise BenchError("%s: profile %s: expected found %s archived %s "
                             "skipped %s, got %s %s\n%s"
                             % (what, name, found, archived, skipped,
                                p["status"], c, s))


def archive_files(archive):
    """{sha256: path} of the archive's messages/ab/<sha256> files."""
    out = {}
    top = archive / "messages"
    if top.exists():
        for p in top.glob("*/*"):
            if len(p.name) == 64:
                out[p.name] = p
    return out


def verify_archive(archive, manifest, full=False):
    """Every message of the manifest is in the archive under its sha256,
    with its size (full: with its bytes, hashed again)."""
    files = archive_files(archive)
    want = {h: size for _, h, size in manifest}
    missing = [h for h in want if h not in files]
    if missing:
        raise BenchError("archive %s lacks %d of %d messages, e.g. %s"
                         % (archive, len(missing), len(want), missing[0]))
    for h, size in want.items():
        p = files[h]
        if p.stat().st_size != size:
            raise BenchError("%s has %d bytes, not %d"
                             % (p, p.stat().st_size, size))
        if full:
            d = hashlib.sha256()
            with open(p, "rb") as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    d.update(b)
            if d.hexdigest() != h:
                raise BenchError("%s does not hash to its name" % p)
    return len(files)
