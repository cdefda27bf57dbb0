"""
hostile_imap.py - FakeImap, a small, correct IMAP4rev1 server script for
hostile.py over an in-memory mailbox (a list of Folder); tests subclass it
and override one step to turn it hostile.
"""

import re

from hostile_conn import CRLF, INTERNALDATE, Stopped


class Folder:
    def __init__(self, raw, messages=(), uidvalidity=1000, first_uid=1,
                 flags=b"(\\HasNoChildren)"):
        self.raw = raw if isinstance(raw, bytes) else raw.encode()
        self.uidvalidity = uidvalidity
        self.msgs = {}
        uid = first_uid
        for m in messages:
            self.msgs[uid] = m
            uid += 1
        self.uidnext = uid
        self.flags = flags

    def seq_of(self, uid):
        return sorted(self.msgs).index(uid) + 1


def parse_uidset(text):
    """'1:3,7' -> [1, 2, 3, 7]; bounded by the caller's folder anyway."""
    out = []
    for part in text.split(b","):
        if b":" in part:
            a, b = part.split(b":", 1)
            a, b = int(a), int(b)
            if a > b:
                a, b = b, a
            if b - a > 1000000:
                raise ValueError("huge range from the client: %r" % part)
            out.extend(range(a, b + 1))
        else:
            out.append(int(part))
    return out


def fetch_response(seq, uid, body, extra=b""):
    return (b"* %d FETCH (UID %d RFC822.SIZE %d INTERNALDATE %s%s "
            b"BODY[] {%d}\r\n" % (seq, uid, len(body), INTERNALDATE, extra,
                                  len(body)) + body + b")\r\n")


def quote(b):
    return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def unquote_mailbox(arg):
    """The mailbox argument of EXAMINE: atom, quoted string or literal."""
    if arg.startswith(b'"'):
        return re.sub(rb"\\(.)", rb"\1", arg[1:-1])
    m = re.match(rb"\{\d+\+?\}\r\n(.*)$", arg, re.S)
    if m:
        return m.group(1)
    return arg


class FakeImap:
    """A correct little IMAP4rev1 server over `folders` (a list of Folder).
    Each step is a method a test may override; `self.conn` is the current
    connection, `self.selected` the EXAMINEd folder.  caps: the capability
    list before login (STARTTLS added when starttls=True and not yet TLS).
    """

    def __init__(self, folders, user="alice", password="secret",
                 caps=b"IMAP4rev1 AUTH=PLAIN SASL-IR LITERAL+",
                 starttls=False, esearch=False, greeting=None):
        self.folders = folders
        self.user = user
        self.password = password
        self.caps = caps
        self.starttls_ok = starttls
        self.esearch = esearch
        self.greeting = greeting
        self.conn = None
        self.selected = None
        self.logins = 0
        self.fetched = []		# UIDs asked for, per UID FETCH command

    def __call__(self, conn):
        self.conn = conn
        self.selected = None
        self.greet()
        while True:
            tag, cmd, rest, whole = conn.command()
            self.dispatch(tag, cmd, rest, whole)

    def dispatch(self, tag, cmd, rest, whole):
        handler = {
            "CAPABILITY": self.on_capability,
            "STARTTLS": self.on_starttls,
            "LOGIN": self.on_login,
            "AUTHENTICATE": self.on_authenticate,
            "LIST": self.on_list,
            "EXAMINE": self.on_examine,
            "UID SEARCH": self.on_search,
            "UID FETCH": self.on_fetch,
            "LOGOUT": self.on_logout,
            "NOOP": lambda t, r: self.ok(t),
        }.get(cmd)
        if handler is None:
            self.conn.send(tag + b" BAD unknown command\r\n")
            return
        handler(tag, rest)

    # -- helpers --

    def ok(self, tag, text=b"done"):
        self.conn.send(tag + b" OK " + text + CRLF)

    def capabilities(self):
        caps = self.caps
        if self.starttls_ok and not self.conn.tls:
            caps += b" STARTTLS"
        if self.esearch:
            caps += b" ESEARCH"
        return caps

    def folder_named(self, raw):
        for f in self.folders:
            if f.raw == raw or (f.raw.upper() == b"INBOX" and
                                raw.upper() == b"INBOX"):
                return f
        return None

    # -- steps --

    def greet(self):
        self.conn.send(self.greeting or b"* OK hostile IMAP ready\r\n")

    def on_capability(self, tag, rest):
        self.conn.send(b"* CAPABILITY " + self.capabilities() + CRLF +
                       tag + b" OK CAPABILITY done\r\n")

    def on_starttls(self, tag, rest):
        self.conn.send(tag + b" OK begin TLS\r\n")
        self.conn.starttls()

    def on_login(self, tag, rest):
        self.logins += 1
        self.ok(tag, b"LOGIN done")

    def on_authenticate(self, tag, rest):
        self.logins += 1
        if b" " not in rest:
            self.conn.send(b"+ \r\n")
            self.conn.readline()
        self.ok(tag, b"AUTHENTICATE done")

    def list_line(self, f):
        name = f.raw
        if re.search(rb'[\x00-\x1f\x7f-\xff"\\]', name) or len(name) > 200:
            n = b"{%d}\r\n" % len(name) + name
        else:
            n = quote(name)
        return b"* LIST " + f.flags + b' "/" ' + n + CRLF

    def on_list(self, tag, rest):
        self.conn.send(b"".join(self.list_line(f) for f in self.folders) +
                       tag + b" OK LIST done\r\n")

    def examine_lines(self, f):
        return (b"* %d EXISTS\r\n* 0 RECENT\r\n"
                b"* OK [UIDVALIDITY %d] UIDs valid\r\n"
                b"* OK [UIDNEXT %d] next\r\n" % (len(f.msgs), f.uidvalidity,
                                                f.uidnext))

    def on_examine(self, tag, rest):
        f = self.folder_named(unquote_mailbox(rest))
        if f is None:
            self.conn.send(tag + b" NO no such folder\r\n")
            return
        self.selected = f
        self.conn.send(self.examine_lines(f) + tag +
                       b" OK [READ-ONLY] EXAMINE done\r\n")

    def search_result(self, f):
        uids = sorted(f.msgs)
        return b" ".join(b"%d" % u for u in uids)

    def on_search(self, tag, rest):
        f = self.selected
        if rest.upper().startswith(b"RETURN"):
            uids = sorted(f.msgs)
            s = b",".join(b"%d" % u for u in uids)
            self.conn.send(b'* ESEARCH (TAG "%s") UID%s\r\n' %
                           (tag, (b" ALL " + s) if uids else b"") +
                           tag + b" OK SEARCH done\r\n")
            return
        r = self.search_result(f)
        self.conn.send(b"* SEARCH" + (b" " + r if r else b"") + CRLF +
                       tag + b" OK SEARCH done\r\n")

    def fetch_one(self, uid):
        """The bytes of one FETCH response (empty: the UID is gone).
        Without BODY in the request (a client asking sizes first) only
        UID, RFC822.SIZE and INTERNALDATE are sent."""
        f = self.selected
        if uid not in f.msgs:
            return b""
        if not self.want_body:
            return b"* %d FETCH (UID %d RFC822.SIZE %d INTERNALDATE %s)\r\n" \
                % (f.seq_of(uid), uid, len(f.msgs[uid]), INTERNALDATE)
        return fetch_response(f.seq_of(uid), uid, f.msgs[uid])

    want_body = True

    def on_fetch(self, tag, rest):
        parts = rest.split(b" ", 1)
        uids = parse_uidset(parts[0])
        items = parts[1].upper() if len(parts) > 1 else b""
        self.want_body = bool(re.search(rb"BODY|RFC822(?![.])", items))
        if self.want_body:		# self.fetched: bodies asked for
            self.fetched.append(uids)
        self.answer_fetch(tag, uids)

    def answer_fetch(self, tag, uids):
        """Answer one UID FETCH (already recorded in self.fetched)."""
        self.conn.send(b"".join(self.fetch_one(u) for u in uids) +
                       tag + b" OK FETCH done\r\n")

    def on_logout(self, tag, rest):
        self.conn.send(b"* BYE bye\r\n" + tag + b" OK LOGOUT done\r\n")
        raise Stopped()
