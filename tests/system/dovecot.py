#!/usr/bin/python3
"""
dovecot.py - a private Dovecot on 127.0.0.1 for the system tests and the
demo: certificates made with openssl, a config, passwd-file users and
maildirs, all inside one directory; ports picked free at start.  Also the
IMAP client helpers the tests use to seed and to read back what the server
holds (imaplib, always read-only: EXAMINE and BODY.PEEK[]): they live in
dovecot_client.py, and tests import them from here.

Command line (used by `make demo` and by hand when debugging):
    dovecot.py start DIR      start (detached), print ports and CA file
    dovecot.py stop DIR       stop the instance started in DIR
    dovecot.py adduser DIR USER [PASSWORD]
    dovecot.py seed DIR USER  append the standard test mailbox for USER
State of a started instance is kept in DIR/harness.json.
"""

import ctypes
import dataclasses
import grp
import hashlib
import json
import os
import pathlib
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import mailgen  # noqa: E402
from dovecot_client import (DovecotClient, User,  # noqa: E402,F401
                            imap_mailbox, imap_quote, mutf7_decode,
                            mutf7_encode)

START_TIMEOUT = 15.0
PROTOCOLS = ("imap", "imaps", "pop3", "pop3s")

# ---- certificates -----------------------------------------------------------

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1
[wrong_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:other-host.example
[self_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = DNS:localhost, IP:127.0.0.1
"""

EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]

def _openssl(args, cwd):
    r = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args),
                                                      r.stderr.strip()))
    return r.stdout

@dataclasses.dataclass
class Certs:
    """Paths of the test PKI.  ca: the CA profiles trust (ca_file);
    server: localhost + 127.0.0.1 signed by the CA; selfsigned: the same
    names, signed by itself (pinning); wrongname: signed by the CA for
    other-host.example only."""
    dir: str
    ca: str
    server: tuple		# (cert, key)
    selfsigned: tuple
    wrongname: tuple

    @staticmethod
    def fingerprint(cert_path):
        """"sha256:hex" of the DER certificate, as a profile pins it."""
        der = ssl.PEM_cert_to_DER_cert(pathlib.Path(cert_path).read_text())
        return "sha256:" + hashlib.sha256(der).hexdigest()

def make_certs(d):
    """Create the test PKI in directory d (idempotent)."""
    d = pathlib.Path(d)
    d.mkdir(parents=True, exist_ok=True)
    names = Certs(dir=str(d), ca=str(d / "ca.pem"),
                  server=(str(d / "server.pem"), str(d / "server.key")),
                  selfsigned=(str(d / "selfsigned.pem"),
                              str(d / "selfsigned.key")),
                  wrongname=(str(d / "wrongname.pem"),
                             str(d / "wrongname.key")))
    if (d / "done").exists():
        return names
    (d / "openssl.cnf").write_text(OPENSSL_CNF)
    cnf = ["-config", "openssl.cnf"]
    _openssl(["req", "-x509"] + cnf + ["-extensions", "ca_ext"] + EC_KEY +
             ["-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
              "-subj", "/CN=mailstow test CA"], d)
    for name, ext, cn in (("server", "server_ext", "localhost"),
                          ("wrongname", "wrong_ext", "other-host.example")):
        _openssl(["req", "-new"] + cnf + EC_KEY +
                 ["-keyout", name + ".key", "-out", name + ".csr",
                  "-subj", "/CN=" + cn], d)
        _openssl(["x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
                  "-CAkey", "ca.key", "-days", "30",
                  "-set_serial", str(secrets.randbits(62)),
                  "-extfile", "openssl.cnf", "-extensions", ext,
                  "-out", name + ".pem"], d)
    _openssl(["req", "-x509"] + cnf + ["-extensions", "self_ext"] + EC_KEY +
             ["-keyout", "selfsigned.key", "-out", "selfsigned.pem",
              "-days", "30", "-subj", "/CN=localhost"], d)
    for k in d.glob("*.key"):
        os.chmod(k, 0o600)
    (d / "done").write_text("")
    return names

# ---- the server ----------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def _mail_owner():
    """uid/gid the mail files belong to: nobody when root (Dovecot refuses
    uid 0 for mail), else ourselves."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    return os.getuid(), os.getgid()

def _die_with_parent():
    """preexec_fn: SIGTERM the child when the test process dies, so a
    killed pytest leaves no Dovecot behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)	# PR_SET_PDEATHSIG
    except OSError:
        pass

class Dovecot(DovecotClient):
    """One Dovecot instance living in `root`, serving `cert` (a (cert, key)
    pair from Certs; default: the CA-signed localhost certificate)."""

    def __init__(self, root, certs=None, cert=None, master_users=None,
                 oauth2=None):
        """master_users: {name: password} of Dovecot master users (log in
        on behalf of any existing user: SASL PLAIN with that user as the
        authorization identity, or "user*master" logins); None: none,
        and no master passdb in the config at all.
        oauth2: the RFC 7662 introspection URL of an authorization server
        (oauth2server.py): SASL XOAUTH2 and OAUTHBEARER are then offered
        and checked by Dovecot's oauth2 passdb against that URL, while
        PLAIN and LOGIN keep using the users' passwords."""
        self.root = pathlib.Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        # Dovecot's unprivileged processes must reach base_dir and homes.
        os.chmod(self.root, 0o755)
        self.certs = certs or make_certs(self.root / "pki")
        self.cert = cert or self.certs.server
        self.ca_file = self.certs.ca
        self.host = "127.0.0.1"
        self.ports = {}
        self.proc = None
        self.pid = None
        self.users = {}
        self.conf = self.root / "dovecot.conf"
        self.log = self.root / "dovecot.log"
        self.userdir = self.root / "users"
        self.maildir = self.root / "mail"
        self.startup_seconds = None
        self.master_users = None
        self.masterfile = self.root / "masters"
        self.oauth2 = oauth2
        self.oauth2_conf = self.root / "dovecot-oauth2.conf.ext"
        if master_users is not None:
            self.master_users = {n: User(n, pw)
                                 for n, pw in master_users.items()}

    # -- configuration --

    def _config(self):
        uid, gid = _mail_owner()
        r = self.root
        lines = [
            "# written by tests/system/dovecot.py; private test instance",
            "instance_name = mailstow-test-%s" % secrets.token_hex(4),
            "base_dir = %s/run" % r,
            "state_dir = %s/state" % r,
            "log_path = %s" % self.log,
            "info_log_path = %s" % self.log,
            "debug_log_path = %s" % self.log,
            "listen = 127.0.0.1",
            "protocols = imap pop3",
            "ssl = yes",
            "ssl_cert = <%s" % self.cert[0],
            "ssl_key = <%s" % self.cert[1],
            "ssl_min_protocol = TLSv1.2",
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain login%s" % (
                " xoauth2 oauthbearer" if self.oauth2 else ""),
            "auth_failure_delay = 0",
            "auth_verbose = yes",
            "mail_location = maildir:~/Maildir:LAYOUT=fs",
            "mail_max_userip_connections = 200",
            "first_valid_uid = 1",
            "first_valid_gid = 1",
            "namespace inbox {",
            "  inbox = yes",
            "  separator = /",
            "}",
        ] + self._master_config() + self._oauth2_config() + [
            "passdb {",
            "  driver = passwd-file",
            # One file per user: Dovecot re-reads a changed passwd-file
            # at most once a second, but opens a new one at once.
            "  args = scheme=PLAIN username_format=%%u %s/%%u" % self.userdir,
        ] + ([
            # A refused token must not be tried as a password; "none":
            # user lookups (doveadm, the static userdb) still ask here.
            "  mechanisms = plain login none",
        ] if self.oauth2 else []) + [
            "}",
            "userdb {",
            "  driver = static",
            "  args = uid=%d gid=%d home=%s/%%u" % (uid, gid, self.maildir),
            "}",
            # No auth penalty: one wrong-password test would otherwise slow
            # every later login from 127.0.0.1 by up to 15 seconds.
            "service anvil {",
            "  unix_listener anvil-auth-penalty {",
            "    mode = 0",
            "  }",
            "}",
            "service imap-login {",
            "  inet_listener imap {",
            "    port = %d" % self.ports["imap"],
            "  }",
            "  inet_listener imaps {",
            "    port = %d" % self.ports["imaps"],
            "    ssl = yes",
            "  }",
            "}",
            "service pop3-login {",
            "  inet_listener pop3 {",
            "    port = %d" % self.ports["pop3"],
            "  }",
            "  inet_listener pop3s {",
            "    port = %d" % self.ports["pop3s"],
            "    ssl = yes",
            "  }",
            "}",
        ]
        if os.geteuid() != 0:
            me = pwd.getpwuid(os.getuid()).pw_name
            lines += ["default_internal_user = %s" % me,
                      "default_internal_group = %s"
                      % grp.getgrgid(os.getgid()).gr_name,
                      "default_login_user = %s" % me,
                      "service anvil {\n  chroot =\n}",
                      "service imap-login {\n  chroot =\n}",
                      "service pop3-login {\n  chroot =\n}"]
        return "\n".join(lines) + "\n"

    def _master_config(self):
        """The master passdb, first: its users log in on behalf of others
        (SASL PLAIN: authcid master, authzid target; or LOGIN as
        "target*master").  result_success = continue makes Dovecot look
        the target up in the normal passdb as well, so that a master
        login as a user who does not exist fails like any other login
        (the static userdb alone would accept any name)."""
        if self.master_users is None:
            return []
        return [
            "auth_master_user_separator = *",
            "passdb {",
            "  driver = passwd-file",
            "  args = scheme=PLAIN username_format=%%u %s" % self.masterfile,
            "  master = yes",
            "  result_success = continue",
            "}",
        ]

    def _oauth2_config(self):
        """The oauth2 passdb, only for the token mechanisms: the token is
        POSTed to the introspection URL (RFC 7662); "active": true and a
        "username" equal to the login name let the user in."""
        if not self.oauth2:
            return []
        self.oauth2_conf.write_text("\n".join([
            "# written by tests/system/dovecot.py",
            "introspection_url = %s" % self.oauth2,
            "introspection_mode = post",
            "force_introspection = yes",
            "username_attribute = username",
            "active_attribute = active",
            "active_value = true",
            "tls_ca_cert_file = %s" % self.ca_file,
            "timeout_msecs = 10000",
            "debug = yes",
        ]) + "\n")
        os.chmod(self.oauth2_conf, 0o644)
        return [
            "passdb {",
            "  driver = oauth2",
            "  mechanisms = xoauth2 oauthbearer",
            "  args = %s" % self.oauth2_conf,
            "}",
        ]

    def _write_masters(self):
        tmp = self.root / ".masters.tmp"
        tmp.write_text("".join("%s:{PLAIN}%s::::::\n" % (u.name, u.password)
                               for u in self.master_users.values()))
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.masterfile)

    def add_master_user(self, name, password=None):
        """Add a master user (only on an instance made with
        master_users=...); works while Dovecot runs."""
        if self.master_users is None:
            raise RuntimeError("this Dovecot has no master passdb; pass "
                               "master_users={} to Dovecot()")
        if password is None:
            password = "master-%s-Secret" % secrets.token_hex(8)
        u = User(name, password)
        self.master_users[name] = u
        self._write_masters()
        return u

    def _write_user(self, u):
        self.userdir.mkdir(exist_ok=True)
        os.chmod(self.userdir, 0o755)
        tmp = self.userdir / (".%s.tmp" % u.name)
        tmp.write_text("%s:{PLAIN}%s::::::\n" % (u.name, u.password))
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.userdir / u.name)

    def add_user(self, name=None, password=None):
        """Add (or return) a user; works while Dovecot runs."""
        if name is None:
            name = "u%s" % secrets.token_hex(4)
        if name in self.users and password is None:
            return self.users[name]
        if password is None:
            password = "pw-%s-Secret" % secrets.token_hex(8)
        u = User(name, password)
        self.users[name] = u
        self._write_user(u)
        return u

    # -- lifecycle --

    def start(self, detach=False, attempts=5):
        """Start Dovecot; retry with other ports when one was taken."""
        t0 = time.monotonic()
        for d in ("run", "state"):
            (self.root / d).mkdir(exist_ok=True)
            os.chmod(self.root / d, 0o755)
        uid, gid = _mail_owner()
        self.maildir.mkdir(exist_ok=True)
        os.chown(self.maildir, uid, gid)
        if not self.users:
            self.add_user("alice")
            self.add_user("bob")
        for u in self.users.values():
            self._write_user(u)
        if self.master_users is not None:
            self._write_masters()
        last = ""
        for _ in range(attempts):
            self.ports = {p: free_port() for p in PROTOCOLS}
            if len(set(self.ports.values())) != len(PROTOCOLS):
                continue
            self.conf.write_text(self._config())
            ok, last = self._spawn(detach)
            if ok:
                self.startup_seconds = time.monotonic() - t0
                if detach:
                    self._save_state()
                return self
            if "in use" not in last:
                break
        raise RuntimeError("dovecot did not start in %s:\n%s"
                           % (self.root, last))

    def _spawn(self, detach):
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        out = open(self.root / "dovecot.out", "ab")
        kw = {"start_new_session": True} if detach else \
             {"preexec_fn": _die_with_parent}
        self.proc = subprocess.Popen([binary, "-F", "-c", str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, **kw)
        out.close()
        self.pid = self.proc.pid
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False, self._tail()
            if self._ready():
                return True, ""
            time.sleep(0.02)
        self.stop()
        return False, "timed out\n" + self._tail()

    def _ready(self):
        for p in ("imap", "pop3"):
            try:
                with socket.create_connection(("127.0.0.1", self.ports[p]),
                                              timeout=1) as s:
                    if not s.recv(64).startswith(b"+OK" if p == "pop3"
                                                 else b"* OK"):
                        return False
            except OSError:
                return False
        for p in ("imaps", "pop3s"):
            try:
                socket.create_connection(("127.0.0.1", self.ports[p]),
                                         timeout=1).close()
            except OSError:
                return False
        return True

    def _tail(self, n=30):
        text = ""
        for f in (self.root / "dovecot.out", self.log):
            if f.exists():
                text += "".join(f.read_text(errors="replace")
                                .splitlines(True)[-n:])
        return text

    def stop(self, wait=True):
        """Stop Dovecot (SIGTERM, then SIGKILL); keeps root and the log.
        wait=False only sends SIGTERM (a later stop() waits), so several
        instances can shut down at once: each takes about a second."""
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not wait:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._alive(pid):
            time.sleep(0.02)
        if self._alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.pid = None
        self.proc = None

    def _alive(self, pid):
        if self.proc is not None and self.proc.pid == pid:
            return self.proc.poll() is None
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read()
            with open("/proc/%d/stat" % pid) as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            return False
        return str(self.conf).encode() in cmd and not zombie

    @staticmethod
    def stop_leftover(root):
        """Stop a Dovecot still running from `root` (its master.pid names a
        process started with root's dovecot.conf), e.g. after a crash."""
        root = pathlib.Path(root).resolve()
        try:
            pid = int((root / "run" / "master.pid").read_text().split()[0])
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if str(root / "dovecot.conf").encode() not in f.read():
                    return
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            pass

    # -- state for the command line --

    def _save_state(self):
        st = {"pid": self.pid, "ports": self.ports, "ca_file": self.ca_file,
              "host": self.host, "cert": list(self.cert),
              "users": {u.name: u.password for u in self.users.values()}}
        p = self.root / "harness.json"
        p.write_text(json.dumps(st, indent=2) + "\n")
        os.chmod(p, 0o600)

    @classmethod
    def load(cls, root):
        """The instance that `dovecot.py start root` left running."""
        st = json.loads((pathlib.Path(root) / "harness.json").read_text())
        d = cls(root, cert=tuple(st["cert"]))
        d.ports, d.pid, d.host = st["ports"], st["pid"], st["host"]
        d.users = {n: User(n, p) for n, p in st["users"].items()}
        return d

# ---- command line ---------------------------------------------------------------

def _usage():
    sys.stderr.write(__doc__.split("Command line", 1)[1])
    return 2

def main(argv):
    if len(argv) < 3:
        return _usage()
    cmd, root = argv[1], argv[2]
    if cmd == "start":
        d = Dovecot(root).start(detach=True)
        print("dovecot pid %d in %s (%.2fs)" % (d.pid, d.root,
                                                d.startup_seconds))
        for p in PROTOCOLS:
            print("  %-6s 127.0.0.1:%d" % (p, d.ports[p]))
        print("  ca_file %s" % d.ca_file)
        for u in d.users.values():
            print("  user %s password %s" % (u.name, u.password))
        return 0
    d = Dovecot.load(root)
    if cmd == "stop":
        d.stop()
        return 0
    if cmd == "adduser" and len(argv) in (4, 5):
        u = d.add_user(argv[3], argv[4] if len(argv) == 5 else None)
        d._save_state()
        print("user %s password %s" % (u.name, u.password))
        return 0
    if cmd == "seed" and len(argv) == 4:
        t0 = time.monotonic()
        uids = d.seed(argv[3], mailgen.standard_mailbox())
        n = sum(len(v) for v in uids.values())
        print("seeded %d messages in %.2fs" % (n, time.monotonic() - t0))
        return 0
    return _usage()

if __name__ == "__main__":
    sys.exit(main(sys.argv))