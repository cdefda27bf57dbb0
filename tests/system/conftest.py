"""
conftest.py - fixtures of the system tests: private Dovecot instances on
127.0.0.1 (dovecot.py), a per-test archive directory with a config writer,
and a runner for the mailstow command line ($MAILSTOW_BUILD/mailstow,
default <repo>/build/mailstow).

Everything lives in one temporary directory per pytest session, removed at
the end unless a test failed or MAILSTOW_KEEP_TMP=1 (then its path, with
the Dovecot logs, is printed).
"""

import dataclasses
import datetime
import hashlib
import json
import os
import shlex
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import dovecot as harness  # noqa: E402
import mailgen  # noqa: E402

REPO = HERE.parents[1]
BUILD = pathlib.Path(os.environ.get("MAILSTOW_BUILD") or REPO / "build")
if not BUILD.is_absolute():
    BUILD = REPO / BUILD
MAILSTOW = BUILD / "mailstow"
RUN_TIMEOUT = 120

_timings = {}
_kept = []
_instances = []


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# ---- Dovecot ------------------------------------------------------------------


@pytest.fixture(scope="session")
def systest_root(request):
    root = pathlib.Path(tempfile.mkdtemp(prefix="mailstow-systest-"))
    os.chmod(root, 0o755)
    yield root
    for d in _instances:		# SIGTERM sent already; wait for each
        d.stop()
    keep = os.environ.get("MAILSTOW_KEEP_TMP") == "1"
    if request.session.testsfailed or keep:
        _kept.append(root)
    else:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def certs(systest_root):
    t0 = time.monotonic()
    c = harness.make_certs(systest_root / "pki")
    _timings["certificates"] = time.monotonic() - t0
    return c


def _instance(root, certs, cert, name, **kw):
    d = harness.Dovecot(root / name, certs=certs, cert=cert, **kw)
    d.start()
    _instances.append(d)
    _timings["dovecot start (%s)" % name] = d.startup_seconds
    return d


@pytest.fixture(scope="session")
def dovecot(systest_root, certs):
    """Dovecot serving the CA-signed certificate for localhost/127.0.0.1."""
    d = _instance(systest_root, certs, certs.server, "main")
    yield d
    d.stop(wait=False)


@pytest.fixture(scope="session")
def dovecot_selfsigned(systest_root, certs):
    """Dovecot serving a self-signed certificate for localhost/127.0.0.1."""
    d = _instance(systest_root, certs, certs.selfsigned, "selfsigned")
    yield d
    d.stop(wait=False)


@pytest.fixture(scope="session")
def dovecot_wrongname(systest_root, certs):
    """Dovecot serving a CA-signed certificate for other-host.example."""
    d = _instance(systest_root, certs, certs.wrongname, "wrongname")
    yield d
    d.stop(wait=False)


MASTER_USER = "archiver"


@pytest.fixture(scope="session")
def dovecot_master(systest_root, certs):
    """Dovecot (CA-signed certificate) with a master passdb: master user
    MASTER_USER (its password in .master_users[MASTER_USER].password) may
    log in as any existing user by SASL PLAIN authzid or as
    "user*archiver"; more with add_master_user()."""
    d = _instance(systest_root, certs, certs.server, "master",
                  master_users={MASTER_USER: "master-%s-Secret"
                                % os.urandom(6).hex()})
    yield d
    d.stop(wait=False)


@pytest.fixture
def seeded(dovecot):
    """seeded(layout=None) -> (user, {folder: {uid: bytes}}): a fresh user
    holding `layout` (default: the standard mailbox), and what the server
    then returns for every message (BODY.PEEK[])."""
    def make(layout=None):
        user = dovecot.add_user()
        t0 = time.monotonic()
        dovecot.seed(user, layout or mailgen.standard_mailbox())
        if layout is None:
            _timings.setdefault("seed standard mailbox",
                                time.monotonic() - t0)
        return user, dovecot.fetch_all(user)
    return make


def pytest_terminal_summary(terminalreporter):
    for root in _kept:
        terminalreporter.write_line(
            "system test files and Dovecot logs kept in %s" % root)
    if _timings:
        terminalreporter.write_line(
            "system test setup: " + ", ".join(
                "%s %.2fs" % kv for kv in _timings.items()))


# ---- running mailstow --------------------------------------------------------------


@dataclasses.dataclass(repr=False)
class Result:
    """What a mailstow call did.  str() (and repr(), which pytest shows
    cut in the middle for `assert x, r`) gives command, status and output;
    `assert x, str(r)` shows all of it."""
    args: list
    rc: int
    out: bytes
    err: bytes
    seconds: float

    @property
    def stdout(self):
        return self.out.decode("utf-8", "replace")

    @property
    def stderr(self):
        return self.err.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise AssertionError("stdout is not JSON (%s)\n%s" % (e, self))

    def __str__(self):
        def cut(s):
            return s if len(s) < 4000 else s[:4000] + "\n...[cut]"
        return ("$ %s\nexit status %d after %.1fs\n--- stdout\n%s\n"
                "--- stderr\n%s" % (" ".join(map(str, self.args)), self.rc,
                                    self.seconds, cut(self.stdout),
                                    cut(self.stderr)))

    __repr__ = __str__


def require_mailstow():
    if not os.access(MAILSTOW, os.X_OK):
        pytest.fail("%s is not built (set MAILSTOW_BUILD or run make)"
                    % MAILSTOW)


def run_mailstow(*args, env=None, timeout=RUN_TIMEOUT, cwd=None):
    """Run the mailstow binary; Result(rc, out, err).  MAILSTOW_CONFIG is
    removed from the environment unless `env` sets it."""
    require_mailstow()
    e = {k: v for k, v in os.environ.items() if k != "MAILSTOW_CONFIG"}
    e.update(env or {})
    # `make check-valgrind` runs the binary under valgrind this way.
    wrap = shlex.split(os.environ.get("MAILSTOW_WRAP", ""))
    argv = wrap + [str(MAILSTOW)] + [str(a) for a in args]
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, capture_output=True, env=e, cwd=cwd,
                           timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as ex:
        pytest.fail("mailstow did not finish in %ds: %s\nstdout: %r\n"
                    "stderr: %r" % (timeout, " ".join(argv),
                                    (ex.stdout or b"")[-2000:],
                                    (ex.stderr or b"")[-2000:]))
    return Result(argv, p.returncode, p.stdout, p.stderr,
                  time.monotonic() - t0)


@pytest.fixture
def mailstow():
    return run_mailstow


# ---- config files ----------------------------------------------------------------


def _yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    v = str(v)
    # Plain style where YAML reads it back as the same string, as a user
    # would write it; double quotes (JSON escapes are YAML's) otherwise.
    if re.fullmatch(r"[A-Za-z0-9_/][A-Za-z0-9_./+@-]*", v) and \
            not re.fullmatch(r"[-+]?[0-9._]+([eE][-+]?[0-9]+)?", v) and \
            v.lower() not in YAML_WORDS:
        return v
    return json.dumps(v, ensure_ascii=False)


YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null",
              "~", ".inf", ".nan"}


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts, lists and scalars (strings quoted)."""
    pad = " " * indent
    lines = []
    for k, v in obj.items():
        if isinstance(v, dict) and v:
            lines.append("%s%s:" % (pad, k))
            lines.append(to_yaml(v, indent + 2))
        elif isinstance(v, dict):
            lines.append("%s%s: {}" % (pad, k))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            lines.append("%s%s:" % (pad, k))
            for item in v:
                sub = to_yaml(item, indent + 4)
                lines.append(pad + "  - " + sub[indent + 4:])
        elif isinstance(v, list):
            lines.append("%s%s: [%s]" % (pad, k, ", ".join(
                _yaml_scalar(x) for x in v)))
        else:
            lines.append("%s%s: %s" % (pad, k, _yaml_scalar(v)))
    return "\n".join(lines)


def _merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        elif v is _DELETE:
            base.pop(k, None)
        else:
            base[k] = v
    return base


_DELETE = object()

PORT_OF = {"imap": "imap", "imaps": "imaps", "imap+starttls": "imap",
           "pop3": "pop3", "pop3s": "pop3s", "pop3+starttls": "pop3"}


class Archive:
    """A test's archive directory, its config file and CLI shortcuts."""

    DELETE = _DELETE

    def __init__(self, tmp_path):
        self.dir = tmp_path
        os.chmod(self.dir, 0o700)
        self.path = tmp_path / "archive"
        self.config = tmp_path / "mailstow.yaml"
        self.outputs = []		# every Result, for leak checks

    def password_file(self, name, password, mode=0o600):
        p = self.dir / ("%s.password" % name)
        p.write_text(password + "\n")	# as `echo pw > file` writes it
        os.chmod(p, mode)
        return p

    def profile(self, dc, user, protocol="imaps", name=None,
                password=None, **over):
        """A profile dict for `user` on `dc` (a harness.Dovecot).
        Keyword arguments are merged in (nested dicts merge; Archive.DELETE
        removes a key)."""
        name = name or user.name
        srv = {"host": dc.host, "port": dc.ports[PORT_OF[protocol]],
               "protocol": protocol, "timeout": "10s"}
        if protocol not in ("imap", "pop3"):
            srv["tls"] = {"ca_file": dc.ca_file}
        pw = self.password_file(name, password or user.password)
        auth = {"user": user.name, "password_file": str(pw)}
        if protocol in ("imap", "pop3"):
            auth["allow_plaintext"] = True
        prof = {"name": name, "server": srv, "auth": auth,
                "folders": {"include": ["*"]}, "schedule": "manual"}
        return _merge(prof, over)

    def write_config(self, *profiles, mode=0o600, archive_path=None):
        doc = {"archive": {"path": str(archive_path or self.path)},
               "profiles": list(profiles)}
        self.config.write_text("# written by tests/system/conftest.py\n" +
                               to_yaml(doc) + "\n")
        os.chmod(self.config, mode)
        return self.config

    def cli(self, *args, **kw):
        r = run_mailstow("-c", self.config, *args, **kw)
        self.outputs.append(r)
        return r

    def run(self, *profiles, **kw):
        """`mailstow run --json P`; (Result, protocol dict)."""
        r = self.cli("run", "--json", *profiles, **kw)
        assert r.out.strip(), "run printed no protocol\n%s" % r
        return r, r.json()

    def files(self):
        """{file name: bytes} of every file under <archive>/messages,
        checking the ab/<sha256> layout on the way (and that no
        directory is nested in messages/ab/)."""
        out = {}
        top = self.path / "messages"
        if not top.exists():
            return out
        for p in top.rglob("*"):
            rel = p.relative_to(top).parts
            if p.is_dir():
                assert len(rel) == 1 and len(rel[0]) == 2, \
                    "unexpected directory in the archive: %s" % p
                continue
            assert len(rel) == 2 and rel[0] == rel[1][:2] and \
                len(rel[1]) == 64, "unexpected file in the archive: %s" % p
            out[rel[1]] = p.read_bytes()
        return out

    def messages(self, archive_user, folder=None):
        args = ["messages", archive_user, "--json"]
        if folder is not None:
            args += ["--folder", folder]
        r = self.cli(*args)
        assert r.rc == 0, r
        return r.json()

    def assert_secret_absent(self, secret):
        """The secret appears in no output of mailstow seen so far and in
        no file of the archive (index, WAL, logs)."""
        s = secret.encode()
        for r in self.outputs:
            assert s not in r.out, "password on stdout of %s" % r.args
            assert s not in r.err, "password on stderr of %s" % r.args
        if self.path.exists():
            for p in self.path.rglob("*"):
                if p.is_file():
                    assert s not in p.read_bytes(), "password in %s" % p


@pytest.fixture
def archive(tmp_path):
    return Archive(tmp_path)


# ---- protocol checks shared by the test modules ---------------------------------


def parse_time(text):
    """ISO 8601 UTC -> aware datetime (accepts Z or +00:00)."""
    assert isinstance(text, str), "time is not a string: %r" % (text,)
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert t.utcoffset() == datetime.timedelta(0), "not UTC: %s" % text
    return t


def error_texts(proto):
    return [e["text"] for e in proto.get("events", [])
            if e.get("level") == "error"]


def all_messages(server):
    """[raw bytes] of {folder: {uid: bytes}}, duplicates included."""
    return [raw for f in server.values() for raw in f.values()]
