"""
hostile_pop3.py - FakePop3, a small, correct POP3 server script for
hostile.py over a list of messages with their UIDLs; tests subclass it and
override one step.  Also the POP3 commands a server received.
"""

import re

from hostile_conn import CRLF, Stopped


def dot_stuff(body):
    """RFC 1939 byte-stuffing and the terminating line of a RETR reply."""
    if not body.endswith(CRLF):
        raise ValueError("POP3 test bodies end with CRLF")
    lines = body[:-2].split(CRLF)
    out = CRLF.join(b"." + l if l.startswith(b".") else l for l in lines)
    return out + CRLF + b".\r\n"


class FakePop3:
    """A correct little POP3 server (RFC 1939, 2449, 2595, 5034) over a
    list of messages with their UIDLs; tests subclass it and override a
    step.  `retrieved` lists the message numbers of every RETR."""

    def __init__(self, messages, uidls=None,
                 caps=(b"USER", b"UIDL", b"SASL PLAIN", b"PIPELINING",
                       b"TOP", b"RESP-CODES"),
                 stls=False, greeting=None):
        self.messages = list(messages)
        self.uidls = list(uidls) if uidls is not None else \
            [b"uid-%d" % i for i in range(1, len(self.messages) + 1)]
        self.caps = list(caps)
        self.stls_ok = stls
        self.greeting = greeting
        self.conn = None
        self.logins = 0
        self.retrieved = []

    def __call__(self, conn):
        self.conn = conn
        self.greet()
        while True:
            line = conn.readline()
            word = line.split(b" ", 1)[0].upper().decode("ascii", "replace")
            rest = line.split(b" ", 1)[1] if b" " in line else b""
            getattr(self, "on_" + word.lower(), self.on_unknown)(rest)

    def greet(self):
        self.conn.send(self.greeting or
                       b"+OK hostile POP3 ready <1.2@hostile.example>\r\n")

    def capabilities(self):
        caps = list(self.caps)
        if self.stls_ok and not self.conn.tls:
            caps.append(b"STLS")
        return caps

    def on_unknown(self, rest):
        self.conn.send(b"-ERR unknown command\r\n")

    def on_capa(self, rest):
        self.conn.send(b"+OK capabilities\r\n" +
                       b"".join(c + CRLF for c in self.capabilities()) +
                       b".\r\n")

    def on_stls(self, rest):
        self.conn.send(b"+OK begin TLS\r\n")
        self.conn.starttls()

    def on_auth(self, rest):
        self.logins += 1
        if b" " not in rest:
            self.conn.send(b"+ \r\n")
            self.conn.readline()
        self.conn.send(b"+OK logged in\r\n")

    def on_user(self, rest):
        self.conn.send(b"+OK say PASS\r\n")

    def on_pass(self, rest):
        self.logins += 1
        self.conn.send(b"+OK logged in\r\n")

    def on_apop(self, rest):
        self.logins += 1
        self.conn.send(b"+OK logged in\r\n")

    def on_stat(self, rest):
        self.conn.send(b"+OK %d %d\r\n" % (
            len(self.messages), sum(len(m) for m in self.messages)))

    def uidl_lines(self):
        return b"".join(b"%d %s\r\n" % (i, u)
                        for i, u in enumerate(self.uidls, 1))

    def on_uidl(self, rest):
        self.conn.send(b"+OK\r\n" + self.uidl_lines() + b".\r\n")

    def on_list(self, rest):
        self.conn.send(b"+OK\r\n" + b"".join(
            b"%d %d\r\n" % (i, len(m))
            for i, m in enumerate(self.messages, 1)) + b".\r\n")

    def retr_reply(self, n):
        if not 1 <= n <= len(self.messages):
            return b"-ERR no such message\r\n"
        m = self.messages[n - 1]
        return b"+OK %d octets\r\n" % len(m) + dot_stuff(m)

    def on_retr(self, rest):
        n = int(rest)
        self.retrieved.append(n)
        self.conn.send(self.retr_reply(n))

    def on_quit(self, rest):
        self.conn.send(b"+OK bye\r\n")
        raise Stopped()


def pop3_commands(server):
    """Upper-cased first words of every client line (POP3 has no tags)."""
    out = []
    for line in server.all_lines():
        m = re.match(rb"^([A-Za-z]+)(?: |$)", line)
        if m:
            out.append(m.group(1).upper().decode())
    return out
