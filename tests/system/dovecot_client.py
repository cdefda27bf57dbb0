"""
dovecot_client.py - the IMAP and POP3 client side of the private Dovecot
(dovecot.py): logged-in imaplib/poplib connections, seeding folders with
messages (APPEND, COPY, doveadm save) and reading back what the server
holds (always read-only: EXAMINE and BODY.PEEK[]); folder names in
modified UTF-7.  Tests import all of it from dovecot.py.
"""

import base64
import dataclasses
import imaplib
import poplib
import re
import ssl
import subprocess

# ---- modified UTF-7 (RFC 3501 5.1.3) for folder names ----------------------


def mutf7_encode(name):
    """UTF-8 folder name -> IMAP modified UTF-7."""
    out, pending = [], []

    def flush():
        if pending:
            b = "".join(pending).encode("utf-16-be")
            enc = base64.b64encode(b).decode().rstrip("=").replace("/", ",")
            out.append("&" + enc + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def mutf7_decode(name):
    """IMAP modified UTF-7 -> UTF-8 folder name."""
    def one(m):
        s = m.group(1)
        if not s:
            return "&"
        s = s.replace(",", "/") + "=" * (-len(s) % 4)
        return base64.b64decode(s).decode("utf-16-be")
    return re.sub(r"&([^-]*)-", one, name)


def imap_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def imap_mailbox(folder):
    """A UTF-8 folder name as an IMAP quoted mUTF-7 argument."""
    return imap_quote(mutf7_encode(folder))


@dataclasses.dataclass
class User:
    name: str
    password: str


class DovecotClient:
    """The client half of dovecot.Dovecot (a mixin): uses its host, ports,
    users, cert, certs, ca_file, log and conf."""

    def ssl_context(self):
        """For the harness's own clients: trusts the test CA and the
        certificate this instance serves, whatever names it carries."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.load_verify_locations(cafile=self.cert[0])
        if self.cert == self.certs.wrongname:
            ctx.check_hostname = False
        return ctx

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() \
            else ""

    def login_attempted(self, user):
        """Did anyone try to log in as `user` (per Dovecot's log)?"""
        name = user.name if isinstance(user, User) else user
        text = self.log_text()
        return ("user=<%s>" % name) in text or \
            ("(%s," % name) in text

    def imap_connect(self, user, mode="imaps"):
        """Logged-in imaplib connection.  mode: imaps, starttls, plain."""
        if isinstance(user, str):
            user = self.users[user]
        if mode == "imaps":
            c = imaplib.IMAP4_SSL(self.host, self.ports["imaps"],
                                  ssl_context=self.ssl_context(), timeout=30)
        else:
            c = imaplib.IMAP4(self.host, self.ports["imap"], timeout=30)
            if mode == "starttls":
                c.starttls(ssl_context=self.ssl_context())
        c.login(user.name, user.password)
        return c

    def pop3_connect(self, user, mode="pop3s"):
        if isinstance(user, str):
            user = self.users[user]
        if mode == "pop3s":
            c = poplib.POP3_SSL(self.host, self.ports["pop3s"],
                                context=self.ssl_context(), timeout=30)
        else:
            c = poplib.POP3(self.host, self.ports["pop3"], timeout=30)
            if mode == "stls":
                c.stls(context=self.ssl_context())
        c.user(user.name)
        c.pass_(user.password)
        return c

    @staticmethod
    def _check(typ, data, what):
        if typ != "OK":
            raise RuntimeError("%s: %s %r" % (what, typ, data))
        return data

    def create(self, conn, folder):
        typ, data = conn.create(imap_mailbox(folder))
        if typ != "OK" and b"ALREADYEXISTS" not in b"".join(
                x for x in data if isinstance(x, bytes)):
            raise RuntimeError("CREATE %s: %r" % (folder, data))

    def append(self, user, folder, data, flags=(), conn=None):
        """APPEND bytes to folder (created if needed); returns the UID."""
        own = conn is None
        if own:
            conn = self.imap_connect(user)
        try:
            if folder.upper() != "INBOX":
                self.create(conn, folder)
            fl = "(%s)" % " ".join(flags) if flags else None
            when = imaplib.Time2Internaldate(1709280000)	# 2024-03-01
            typ, resp = conn.append(imap_mailbox(folder), fl, when, data)
            self._check(typ, resp, "APPEND to %s" % folder)
            m = re.search(rb"APPENDUID \d+ (\d+)", resp[0] or b"")
            return int(m.group(1)) if m else None
        finally:
            if own:
                conn.logout()

    def deliver(self, user, folder, data):
        """Put a message into a folder without logging in (doveadm save),
        so that Dovecot's log shows only the logins of the program under
        test (see login_attempted)."""
        name = user.name if isinstance(user, User) else user
        base = ["doveadm", "-c", str(self.conf)]
        if folder.upper() != "INBOX":
            subprocess.run(base + ["mailbox", "create", "-u", name, folder],
                           capture_output=True)
        r = subprocess.run(base + ["save", "-u", name, "-m", folder],
                           input=data, capture_output=True)
        if r.returncode != 0:
            raise RuntimeError("doveadm save for %s into %s: %s"
                               % (name, folder, r.stderr.decode().strip()))

    def copy(self, user, src, uid, dst, conn=None):
        own = conn is None
        if own:
            conn = self.imap_connect(user)
        try:
            self.create(conn, dst)
            self._check(*conn.select(imap_mailbox(src)), "SELECT " + src)
            self._check(*conn.uid("COPY", str(uid), imap_mailbox(dst)),
                        "COPY to " + dst)
            conn.close()
        finally:
            if own:
                conn.logout()

    def seed(self, user, layout):
        """Append every message of a mailgen.Layout, then do its copies.
        Returns {folder: [uid, ...]} in layout order."""
        conn = self.imap_connect(user)
        uids = {}
        try:
            for folder, msgs in layout.folders.items():
                uids[folder] = [self.append(user, folder, m.raw, m.flags,
                                            conn=conn) for m in msgs]
            for src, idx, dst in layout.copies:
                self.copy(user, src, uids[src][idx], dst, conn=conn)
        finally:
            conn.logout()
        return uids

    def folders(self, user, conn=None):
        """Selectable folder names (UTF-8) of the user."""
        own = conn is None
        if own:
            conn = self.imap_connect(user)
        try:
            typ, data = conn.list('""', '"*"')
            self._check(typ, data, "LIST")
        finally:
            if own:
                conn.logout()
        names = []
        for item in data:
            if isinstance(item, tuple):		# name sent as a literal
                head, name = item[0], item[1]
                flags = re.match(rb"\(([^)]*)\)", head).group(1)
            else:
                m = re.match(rb'\(([^)]*)\) (?:NIL|"(?:[^"\\]|\\.)*") (.*)$',
                             item)
                flags, name = m.group(1), m.group(2)
                if name.startswith(b'"'):
                    name = re.sub(rb"\\(.)", rb"\1", name[1:-1])
            if b"\\noselect" in flags.lower():
                continue
            names.append(mutf7_decode(name.decode("ascii")))
        return sorted(names)

    def _fetch(self, user, items, parse):
        conn = self.imap_connect(user)
        out = {}
        try:
            for folder in self.folders(user, conn):
                typ, data = conn.select(imap_mailbox(folder), readonly=True)
                self._check(typ, data, "EXAMINE " + folder)
                out[folder] = {}
                if int(data[0]) == 0:
                    continue
                typ, data = conn.uid("FETCH", "1:*", "(UID %s)" % items)
                self._check(typ, data, "FETCH in " + folder)
                for item in data:
                    if item == b")" or item is None:
                        continue
                    head = item[0] if isinstance(item, tuple) else item
                    uid = int(re.search(rb"UID (\d+)", head).group(1))
                    out[folder][uid] = parse(item)
                conn.close()
        finally:
            conn.logout()
        return out

    def fetch_all(self, user):
        """{folder: {uid: raw bytes}} via BODY.PEEK[] (changes no flag)."""
        return self._fetch(user, "BODY.PEEK[]", lambda item: item[1])

    def flags(self, user):
        """{folder: {uid: frozenset of flags}}."""
        def parse(item):
            head = item[0] if isinstance(item, tuple) else item
            f = re.search(rb"FLAGS \(([^)]*)\)", head).group(1)
            return frozenset(f.decode().split())
        return self._fetch(user, "FLAGS", parse)

    def uidvalidity(self, user, folder):
        conn = self.imap_connect(user)
        try:
            typ, data = conn.status(imap_mailbox(folder), "(UIDVALIDITY)")
            self._check(typ, data, "STATUS " + folder)
            return int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))
        finally:
            conn.logout()
