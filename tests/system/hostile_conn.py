"""
hostile_conn.py - one connection of the hostile test server (hostile.py) as
a script sees it: exact bytes out, every client line recorded, STARTTLS
with any certificate, stalls, trickles and a close at a chosen byte.  Every
blocking call gives up when the server's lifetime ends (Stopped).
"""

import re
import select
import socket
import ssl
import time

CRLF = b"\r\n"
INTERNALDATE = b'"01-Mar-2024 08:00:00 +0000"'


class Stopped(Exception):
    """The server's lifetime ended (or the test stopped it)."""


class ClientGone(Exception):
    """The client closed the connection."""


# ---- one connection ------------------------------------------------------------


class Conn:
    """An accepted connection as a script sees it.  Every byte the client
    sent is in `received` (after TLS: the decrypted bytes), every complete
    line in `lines` (without CRLF; literals the client sent follow their
    line as separate entries)."""

    def __init__(self, server, sock, index):
        self.server = server
        self.sock = sock
        self.raw = sock
        self.index = index		# 0 for the first connection
        self.buf = b""
        self.received = b""
        self.lines = []
        self.sent = 0			# bytes written to the client
        self.tls = False
        self.closed_by_client = False
        self.handshake_sent = None	# set by stall_handshake()

    # -- time --

    def _remaining(self):
        left = self.server.deadline - time.monotonic()
        if left <= 0 or self.server.stopping.is_set():
            raise Stopped()
        return left

    def sleep(self, seconds):
        """Stall; returns early (Stopped) when the server stops."""
        end = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            if now >= end:
                return
            self._remaining()
            self.server.stopping.wait(min(0.05, end - now))

    # -- reading --

    def _fill(self, timeout=None):
        """Read more bytes into buf; ClientGone on EOF."""
        end = time.monotonic() + (timeout if timeout is not None else 1e9)
        while True:
            if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
                break
            wait = min(0.05, self._remaining(), max(0, end - time.monotonic()))
            r, _, _ = select.select([self.sock], [], [], wait)
            if r:
                break
            if time.monotonic() >= end:
                raise TimeoutError("no data from the client")
        try:
            data = self.sock.recv(65536)
        except ssl.SSLWantReadError:
            return
        except (ConnectionError, OSError) as e:
            if self.server.stopping.is_set():
                raise Stopped()
            self.closed_by_client = True
            raise ClientGone(str(e))
        if not data:
            self.closed_by_client = True
            raise ClientGone("EOF")
        self.buf += data
        self.received += data

    def readline(self, timeout=None):
        """One line without its CRLF (a bare LF also ends it)."""
        while b"\n" not in self.buf:
            self._fill(timeout)
        line, self.buf = self.buf.split(b"\n", 1)
        if line.endswith(b"\r"):
            line = line[:-1]
        self.lines.append(line)
        self.server.log("C%d: %r" % (self.index, line[:200]))
        return line

    def read_exact(self, n, timeout=None):
        while len(self.buf) < n:
            self._fill(timeout)
        data, self.buf = self.buf[:n], self.buf[n:]
        self.lines.append(data)
        return data

    def command(self, timeout=None):
        """An IMAP command line with any literals joined in:
        (tag, COMMAND upper-cased, rest as bytes, whole line bytes)."""
        line = self.readline(timeout)
        whole = line
        while True:
            m = re.search(rb"\{(\d+)(\+?)\}$", line)
            if not m:
                break
            if not m.group(2):
                self.send(b"+ go ahead\r\n")
            lit = self.read_exact(int(m.group(1)), timeout)
            line = self.readline(timeout)
            whole = whole + CRLF + lit + line
        parts = whole.split(b" ", 2)
        tag = parts[0]
        cmd = parts[1].upper() if len(parts) > 1 else b""
        rest = parts[2] if len(parts) > 2 else b""
        if cmd == b"UID" and rest:
            sub = rest.split(b" ", 1)
            cmd = b"UID " + sub[0].upper()
            rest = sub[1] if len(sub) > 1 else b""
        return tag, cmd.decode("ascii", "replace"), rest, whole

    def wait_closed(self, timeout):
        """True when the client closes within `timeout` seconds (any
        bytes it sends meanwhile are recorded)."""
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                try:
                    self._fill(timeout=max(0.01, end - time.monotonic()))
                except TimeoutError:
                    return False
        except ClientGone:
            return True
        return False

    # -- writing --

    def send(self, data):
        """Exactly these bytes, in one write."""
        self._remaining()
        try:
            self.sock.sendall(data)
        except (ConnectionError, OSError) as e:
            if self.server.stopping.is_set():
                raise Stopped()
            self.closed_by_client = True
            raise ClientGone(str(e))
        self.sent += len(data)

    def trickle(self, data, interval, chunk=1):
        """`chunk` bytes every `interval` seconds."""
        for i in range(0, len(data), chunk):
            self.send(data[i:i + chunk])
            self.sleep(interval)

    def send_until_closed(self, data, limit, chunk=65536):
        """Send `data` repeatedly until the client closes or `limit` bytes
        went out; returns the number of bytes sent."""
        start = self.sent
        self.sock.settimeout(1.0)
        try:
            while self.sent - start < limit:
                self._remaining()
                try:
                    n = self.sock.send(data[:chunk])
                except socket.timeout:
                    continue
                except (ConnectionError, OSError):
                    self.closed_by_client = True
                    break
                self.sent += n
        finally:
            try:
                self.sock.settimeout(None)
            except OSError:
                pass
        return self.sent - start

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        if self.raw is not self.sock:
            try:
                self.raw.close()
            except OSError:
                pass

    def reset(self):
        """Close with a TCP RST instead of a FIN."""
        try:
            self.raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.close()

    # -- TLS --

    def starttls(self, context=None, timeout=10):
        """Server side of a TLS handshake on this connection (implicit TLS
        or after STARTTLS).  Raises ssl.SSLError when the client refuses."""
        ctx = context or self.server.context_for(self.index)
        self.raw.settimeout(min(timeout, self._remaining()))
        tls = ctx.wrap_socket(self.raw, server_side=True,
                              do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as e:
            self.server.log("C%d: handshake failed: %s" % (self.index, e))
            self.closed_by_client = True
            raise
        tls.settimeout(None)
        tls.setblocking(True)
        self.sock = tls
        self.tls = True

    def partial_handshake(self, context=None, keep=0.5):
        """Read the ClientHello, answer with only the first `keep` share
        of the server's first flight, and return (the caller then
        stalls)."""
        ctx = context or self.server.context_for(self.index)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_side=True)
        while True:
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            flight = out.read()
            if flight:
                self.send(flight[:max(1, int(len(flight) * keep))])
                return
            while not self.buf:
                self._fill()
            inc.write(self.buf)
            self.buf = b""

    def stall_handshake(self, partial=False, timeout=30):
        """A TLS handshake that never finishes: wait for the ClientHello,
        then answer nothing (the handshake never starts) or only part of
        the first flight (it stalls midway), and hold the connection until
        the client gives up.  `handshake_sent` records how many handshake
        bytes went out; returns True when the client closed in time."""
        before = self.sent
        if partial:
            self.partial_handshake()
        else:
            while len(self.buf) < 6:	# a TLS record header and its type
                self._fill()
        self.handshake_sent = self.sent - before
        return self.wait_closed(timeout)
