"""
hostile.py - a scripted, hostile IMAP/POP3 server on 127.0.0.1 for the system
tests (stdlib only).  It listens on a free port, plain or with implicit
TLS, and hands every accepted connection to a script: a callable that gets
a Conn and does exactly what the test wants - send exact bytes (several
responses in one write), read and record the client's lines, upgrade to TLS
on STARTTLS with any certificate, stall, trickle one byte every N ms, close
at a chosen byte (Conn, in hostile_conn.py).  FakeImap and FakePop3
(hostile_imap.py, hostile_pop3.py) are scripts that play a small, correct
IMAP or POP3 server over an in-memory mailbox; tests subclass them and
override one step to turn them hostile.  Tests import all of it from here.

Every server stops by itself: after `lifetime` seconds the listener and all
connections are closed, and every blocking call of a script gives up.
Whatever a script raises is kept in HostileServer.errors (tests assert it is
empty when the script was meant to run to its end).

Certificate helpers (openssl command line) make what the harness's test PKI
lacks: an expired certificate, one from an unknown root, and one whose name
has an embedded NUL.
"""

import base64
import fcntl
import os
import pathlib
import re
import secrets
import select
import socket
import ssl
import subprocess
import threading
import time

from hostile_conn import (CRLF, INTERNALDATE, ClientGone, Conn,  # noqa: F401
                          Stopped)
from hostile_imap import (FakeImap, Folder, fetch_response,  # noqa: F401
                          parse_uidset, quote, unquote_mailbox)
from hostile_pop3 import FakePop3, dot_stuff, pop3_commands  # noqa: F401


# ---- the server ------------------------------------------------------------------


def server_context(cert, min_version=None, max_version=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if ciphers:
        ctx.set_ciphers(ciphers)
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    ctx.load_cert_chain(cert[0], cert[1])
    return ctx


# Lowest descriptor number of a listener.  A thread elsewhere in the
# test process may still sit in a blocking accept() on a listener that
# another thread closed (close() does not wake it; it keeps the old
# socket).  When a signal interrupts it - a SIGCHLD reaches it whenever a
# child exits while the main thread blocks signals around vfork - the
# kernel restarts accept() on the same descriptor *number*; were that
# now our listener, the stray thread would take our client and answer in
# its own way (test_secrets' TLS run got test_pop3 FakePop3's plaintext
# greeting: "wrong version number").  No test's own server gets numbers
# this high; ours reuse them only among themselves, and their accept
# loop uses its socket object, which is -1 once closed, never a number.
LISTEN_FD_MIN = 900


def _listener():
    """A socket listening on 127.0.0.1:<free port>, on a descriptor
    number >= LISTEN_FD_MIN when the file limit allows it."""
    low = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        low.bind(("127.0.0.1", 0))
        low.listen(16)
    except OSError:
        low.close()
        raise
    try:
        fd = fcntl.fcntl(low.fileno(), fcntl.F_DUPFD_CLOEXEC, LISTEN_FD_MIN)
    except OSError:		# RLIMIT_NOFILE at or below the minimum
        return low
    low.close()			# the duplicate keeps the port listening
    return socket.socket(fileno=fd)


class HostileServer:
    """Listens on 127.0.0.1:<free port>; runs `script(conn)` in a thread
    per connection.  tls: None (plain; a script may call conn.starttls())
    or "implicit" (handshake before the script runs).  cert: a (cert, key)
    pair, or a list of them used by connection index (the last one for
    later connections): a server that switches certificates."""

    def __init__(self, script, tls=None, cert=None, context=None,
                 lifetime=30.0, verbose=False):
        self.script = script
        self.tls = tls
        self.certs = cert if isinstance(cert, list) else \
            ([cert] if cert else [])
        self.context = context
        self.lifetime = lifetime
        self.verbose = verbose
        self.conns = []
        self.errors = []
        self.events = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = []
        # Port 0: the kernel picks a free port while the socket stays
        # bound and listening, so no one can take the port in between.
        self.sock = _listener()
        self.port = self.sock.getsockname()[1]
        self.deadline = time.monotonic() + lifetime
        self._ctx_cache = {}

    def log(self, text):
        with self.lock:
            self.events.append(text)
        if self.verbose:
            print("hostile:%d %s" % (self.port, text))

    def context_for(self, index):
        if self.context is not None:
            return self.context
        if not self.certs:
            raise RuntimeError("TLS asked for but no certificate given")
        cert = tuple(self.certs[min(index, len(self.certs) - 1)])
        if cert not in self._ctx_cache:
            self._ctx_cache[cert] = server_context(cert)
        return self._ctx_cache[cert]

    def start(self):
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def _accept_loop(self):
        while not self.stopping.is_set():
            if time.monotonic() >= self.deadline:
                self.log("lifetime over")
                self.stop(join=False)
                return
            try:
                r, _, _ = select.select([self.sock], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                c = Conn(self, s, len(self.conns))
                self.conns.append(c)
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, c):
        self.log("connection %d" % c.index)
        try:
            if self.tls == "implicit":
                c.starttls()
            self.script(c)
        except (Stopped, ClientGone):
            pass
        except (ssl.SSLError, ConnectionError) as e:
            self.log("connection %d: %s" % (c.index, e))
        except Exception as e:		# a script bug or a failed expectation
            self.log("connection %d: script error %r" % (c.index, e))
            with self.lock:
                self.errors.append(e)
        finally:
            c.close()

    def stop(self, join=True):
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            c.close()
        if join:
            for t in self.threads:
                if t is not threading.current_thread():
                    t.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what the clients sent --

    def all_lines(self):
        return [line for c in self.conns for line in c.lines]

    def commands(self):
        """Upper-cased command words of every client line that looks like
        a command (TAG WORD ...)."""
        out = []
        for line in self.all_lines():
            m = re.match(rb"^[A-Za-z0-9.]+ ([A-Za-z]+)(?: ([A-Za-z]+))?",
                         line)
            if m:
                w = m.group(1).upper().decode()
                if w == "UID" and m.group(2):
                    w += " " + m.group(2).upper().decode()
                out.append(w)
        return out

    def received(self):
        return b"".join(c.received for c in self.conns)


def sasl_plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" +
                            password.encode())


def credentials_sent(server, user, password):
    """Did any client line carry a login or the password in any form?"""
    cmds = server.commands()
    if "LOGIN" in cmds or "AUTHENTICATE" in cmds:
        return True
    if set(pop3_commands(server)) & {"USER", "PASS", "AUTH", "APOP"}:
        return True
    data = server.received()
    return any(s in data for s in (password.encode(),
                                   base64.b64encode(password.encode()),
                                   sasl_plain(user, password)))


# ---- certificates --------------------------------------------------------------


def _openssl(args, cwd, stdin=None):
    r = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True,
                       input=stdin)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args),
                                               r.stderr.decode()))
    return r.stdout


EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

CA_CNF = """\
[ca]
default_ca = hostile
[hostile]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = anything
copy_extensions = none
unique_subject = no
[anything]
commonName = supplied
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[srv]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[nul]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = %(nul_san)s
"""

NUL_NAME = b"localhost\x00.attacker.example"


def _der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _nul_san():
    """subjectAltName as DER: one dNSName with an embedded NUL."""
    gn = b"\x82" + _der_len(len(NUL_NAME)) + NUL_NAME
    return "DER:" + (b"\x30" + _der_len(len(gn)) + gn).hex()


def make_hostile_certs(d, ca_cert, ca_key):
    """Certificates the harness PKI lacks, in directory d:
    expired: signed by the trusted test CA (ca_cert/ca_key), valid in
             January 2020 only;
    unknown_root: localhost/127.0.0.1, signed by a CA nobody trusts;
    nul_name: signed by the trusted CA for "localhost\\0.attacker.example".
    Returns {name: (cert, key)}."""
    d = pathlib.Path(d)
    d.mkdir(parents=True, exist_ok=True)
    out = {n: (str(d / (n + ".pem")), str(d / (n + ".key")))
           for n in ("expired", "unknown_root", "nul_name", "other_ca")}
    if (d / "done").exists():
        return out
    (d / "ca.cnf").write_text(CA_CNF % {"nul_san": _nul_san()})
    (d / "index.txt").write_text("")
    (d / "serial").write_text("%x\n" % (secrets.randbits(60) | 1 << 60))
    cnf = ["-config", "ca.cnf"]

    def csr(name, cn):
        _openssl(["req", "-new"] + cnf + EC + ["-keyout", name + ".key",
                  "-out", name + ".csr", "-subj", "/CN=" + cn], d)

    def sign(name, ca, key, ext, start=None, end=None, days="30"):
        args = ["ca", "-batch"] + cnf + ["-cert", ca, "-keyfile", key,
                                         "-in", name + ".csr",
                                         "-out", name + ".pem",
                                         "-extensions", ext, "-notext"]
        args += ["-startdate", start, "-enddate", end] if start else \
            ["-days", days]
        _openssl(args, d)

    csr("expired", "localhost")
    sign("expired", ca_cert, ca_key, "srv", "20200101000000Z",
         "20200201000000Z")
    _openssl(["req", "-x509"] + cnf + ["-extensions", "ca_ext"] + EC +
             ["-keyout", "other_ca.key", "-out", "other_ca.pem", "-days",
              "30", "-subj", "/CN=nobody trusts this CA"], d)
    csr("unknown_root", "localhost")
    sign("unknown_root", "other_ca.pem", "other_ca.key", "srv")
    csr("nul_name", "attacker.example")
    sign("nul_name", ca_cert, ca_key, "nul")
    for k in d.glob("*.key"):
        k.chmod(0o600)
    (d / "done").write_text("")
    return out


# ---- profiles for the archive fixture ------------------------------------------


class Endpoint:
    """What conftest.Archive.profile() needs from a server: host, ports
    and the CA file; every protocol goes to the one hostile port."""

    def __init__(self, port, ca_file, host="127.0.0.1"):
        self.host = host
        self.ca_file = ca_file
        self.ports = {p: port for p in ("imap", "imaps", "pop3", "pop3s")}


class Account:
    def __init__(self, name="alice", password=None):
        self.name = name
        self.password = password or "Pw-%s-Hostile" % secrets.token_hex(8)


def profile(archive, hs, certs, protocol="imaps", account=None,
            timeout="5s", **over):
    """A profile for `archive` (conftest.Archive) that talks to `hs`
    (a HostileServer or a port) trusting the harness CA."""
    port = hs if isinstance(hs, int) else hs.port
    acct = account or Account()
    if protocol.startswith("pop3"):
        from conftest import Archive
        over.setdefault("folders", Archive.DELETE)
    over.setdefault("server", {})
    over["server"].setdefault("timeout", timeout)
    return archive.profile(Endpoint(port, certs.ca), acct,
                           protocol=protocol, **over)


# ---- running mailstow against it -------------------------------------------------


# Runs ARGV as a child of a small process and writes "PID" and then
# "PID MAXRSS_KIB" to the file in argv[1].  Measuring from pytest itself
# would not work: a child forked (or vforked) from a big pytest process
# inherits its peak RSS in ru_maxrss across exec.
_RSS_WRAPPER = """
import os, sys
out, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
with open(out, "w") as f:
    f.write("%d\\n" % pid)
_, status, ru = os.wait4(pid, 0)
with open(out, "w") as f:
    f.write("%d %d\\n" % (pid, ru.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_measured(archive, *args, timeout=60, env=None, sample=None):
    """`mailstow -c CONF ARGS` as conftest.run_mailstow does, but also
    returns the process's peak RSS in KiB, and calls sample(pid) every
    20 ms while it runs (e.g. to read /proc/PID/cmdline).
    Returns (conftest.Result, maxrss_kib); the Result is added to
    archive.outputs."""
    import signal
    import tempfile
    import pytest
    from conftest import MAILSTOW, Result, require_mailstow
    require_mailstow()
    e = {k: v for k, v in os.environ.items() if k != "MAILSTOW_CONFIG"}
    e.update(env or {})
    argv = [str(MAILSTOW), "-c", str(archive.config)] + [str(a) for a in args]
    with tempfile.TemporaryDirectory() as d:
        info = pathlib.Path(d) / "rss"
        out = open(pathlib.Path(d) / "out", "w+b")
        err = open(pathlib.Path(d) / "err", "w+b")
        t0 = time.monotonic()
        p = subprocess.Popen(["/usr/bin/python3", "-c", _RSS_WRAPPER,
                              str(info)] + argv, stdout=out, stderr=err,
                             env=e, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        child = None
        while p.poll() is None:
            if child is None and info.exists():
                text = info.read_text().split()
                child = int(text[0]) if text else None
            if sample is not None and child is not None:
                sample(child)
            if time.monotonic() - t0 > timeout:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                err.seek(0)
                pytest.fail("mailstow did not finish in %ds: %s\nstderr: %r"
                            % (timeout, " ".join(argv), err.read()[-2000:]))
            time.sleep(0.02)
        fields = info.read_text().split()
        assert len(fields) == 2, "the RSS wrapper failed (%r)" % fields
        rc = p.returncode if p.returncode <= 128 else 128 - p.returncode
        out.seek(0)
        err.seek(0)
        r = Result(argv, rc, out.read(), err.read(), time.monotonic() - t0)
        out.close()
        err.close()
    archive.outputs.append(r)
    assert_no_sanitizer_report(r)
    return r, int(fields[1])


def assert_no_sanitizer_report(r):
    """Under `make SANITIZE=1` (MAILSTOW_BUILD=build-san) a memory error
    ends the process with status 1, which failure tests expect anyway:
    look for the report itself."""
    for marker in (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer",
                   b"runtime error:"):
        assert marker not in r.err, "sanitizer report\n%s" % r


_SAN = []


def sanitizer_build():
    """Is the mailstow under test built with AddressSanitizer?  (Its
    shadow memory and quarantine raise the RSS of every run.)"""
    if not _SAN:
        from conftest import MAILSTOW
        try:
            _SAN.append(b"__asan_init" in pathlib.Path(MAILSTOW).read_bytes())
        except OSError:
            _SAN.append(False)
    return _SAN[0]


def rss_bound_kib(normal_mib=64):
    """Peak RSS a run may reach: `normal_mib`, or three times that for a
    sanitizer build."""
    return normal_mib * 1024 * (3 if sanitizer_build() else 1)


def last_protocol(archive, name):
    r = archive.cli("protocol", "--last", name, "--json")
    assert r.rc in (0, 1), str(r)
    return r.json()


def event_texts(proto, level=None):
    return [e["text"] for e in proto.get("events", [])
            if level is None or e.get("level") == level]


MAILBOX_COMMANDS = {"LOGIN", "AUTHENTICATE", "LIST", "LSUB", "SELECT",
                    "EXAMINE", "STATUS", "UID SEARCH", "UID FETCH", "SEARCH",
                    "FETCH", "NAMESPACE", "ID", "ENABLE", "COMPRESS"}


def assert_aborted(archive, prof, server, keywords, account=None,
                   bound=None, allowed=None):
    """Run `prof` against `server`: it must be "aborted" - exit 1, status
    failed, an error event containing one of `keywords` (lower case), no
    credential and no mailbox command sent, nothing archived.  Returns
    the protocol."""
    archive.write_config(prof)
    r, proto = archive.run(prof["name"], timeout=60)
    assert_no_sanitizer_report(r)
    assert r.rc == 1, str(r)
    assert proto["status"] == "failed", str(r)
    assert proto["counts"]["archived"] == 0, str(r)
    errors = event_texts(proto, "error")
    assert errors, "no error event\n%s" % r
    pop3 = prof["server"]["protocol"].startswith("pop3")
    cmds = pop3_commands(server) if pop3 else server.commands()
    if os.environ.get("HOSTILE_VERBOSE"):
        print("\n%s: %.2fs %r %r" % (prof["name"], r.seconds, errors, cmds))
    text = " ".join(errors).lower()
    assert any(k in text for k in keywords), \
        "error events %r name none of %r" % (errors, keywords)
    if allowed is None:
        allowed = ("CAPA", "STLS", "QUIT") if pop3 else \
            ("CAPABILITY", "STARTTLS", "LOGOUT")
    assert set(cmds) <= set(allowed), \
        "the client went on after it should have stopped: %r" % cmds
    acct = account or Account(prof["auth"]["user"], "x")
    pw = pathlib.Path(prof["auth"]["password_file"]).read_text().strip()
    assert not credentials_sent(server, acct.name, pw), \
        "credentials were sent: %r" % server.all_lines()
    if bound is not None:
        assert r.seconds < bound, "took %.1fs, bound %ss" % (r.seconds, bound)
    assert archive.files() == {}
    return proto
