#!/usr/bin/python3
"""
oauth2server.py - an OAuth2 authorization server for the system tests
(stdlib only): HTTPS on 127.0.0.1 with a certificate of the test CA, port
picked free, threads that stop with the server.

Endpoints (form-encoded POST, JSON answers, errors per RFC 6749 5.2):
  /token       grant_type refresh_token, client_credentials and
               urn:ietf:params:oauth:grant-type:device_code (RFC 8628 3.4)
  /device      RFC 8628 device authorization (interval 1 for tests)
  /introspect  RFC 7662 token introspection, for Dovecot's oauth2 passdb;
               also served on a plain-HTTP loopback listener
               (introspect_url_plain) for a Dovecot that cannot be given
               the test CA
Clients authenticate with client_id and client_secret in the form body.

Refresh tokens ROTATE on every refresh.  As real identity providers do,
the previous refresh token stays valid for a grace period that ends the
first time its successor is presented: a client that died after the
server answered but before it stored the new token can still log in with
the old one; a client that stored the new one must never present the old
one again, and the request log (requests, with each presented refresh
token's state: current, previous, retired, revoked, unknown) lets a test
check exactly that.

Test controls: approve(user_code, user), deny(user_code),
expire_device(user_code), revoke(refresh token or user name),
expire_all_access_tokens(), set_lifetime(seconds), grant_mailbox(client,
user) (app-only tokens of a client open that mailbox), issue(user) (tokens as
a finished login would have them), secrets() (every token, code and client
secret ever issued, for leak greps).
"""

import dataclasses
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
MAX_BODY = 64 * 1024
HANDSHAKE_TIMEOUT = 10


@dataclasses.dataclass
class Client:
    client_id: str
    secret: str			# None: a public client


@dataclasses.dataclass
class AccessToken:
    token: str
    user: str			# None: app-only (client_credentials)
    client_id: str
    scope: str
    expires_at: float		# time.time()
    revoked: bool = False


@dataclasses.dataclass
class Family:
    """One grant: the chain of refresh tokens rotated from one login."""
    user: str
    client_id: str
    scope: str
    current: str
    previous: str = None	# valid until `current` is presented once
    retired: set = dataclasses.field(default_factory=set)
    revoked: bool = False


@dataclasses.dataclass
class Device:
    device_code: str
    user_code: str
    client_id: str
    scope: str
    expires_at: float
    interval: int
    state: str = "pending"	# pending approved denied used
    user: str = None
    last_poll: float = None


@dataclasses.dataclass
class Request:
    """One request as the server saw it; tokens kept so tests can compare
    (never printed by the server itself)."""
    time: float
    path: str
    grant_type: str = None
    client_id: str = None
    presented: str = None	# refresh token, device code or access token
    presented_state: str = None	# see the module doc
    status: int = None
    error: str = None
    user: str = None
    issued_access: str = None
    issued_refresh: str = None
    secret_sent: bool = None	# /device: was client_secret in the form


def _json_error(error, description, status=400):
    return status, {"error": error, "error_description": description}


class _Handler(BaseHTTPRequestHandler):
    server_version = "mailstow-test-idp/1"
    protocol_version = "HTTP/1.1"

    def setup(self):
        self.request.settimeout(HANDSHAKE_TIMEOUT)
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as e:
                self.server.owner._tls_failure(e)
                self.handshake_failed = True
        BaseHTTPRequestHandler.setup(self)

    def handle(self):
        if getattr(self, "handshake_failed", False):
            return
        try:
            BaseHTTPRequestHandler.handle(self)
        except (ssl.SSLError, OSError):
            pass

    def log_message(self, fmt, *args):	# quiet: pytest owns stderr
        pass

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Pragma", "no-cache")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(405, {"error": "invalid_request",
                         "error_description": "POST only"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self._send(413, {"error": "invalid_request"})
            return
        body = self.rfile.read(n).decode("utf-8", "replace")
        form = {k: v[0] for k, v in urllib.parse.parse_qs(
            body, keep_blank_values=True).items()}
        path = urllib.parse.urlsplit(self.path).path
        plain = not isinstance(self.request, ssl.SSLSocket)
        status, answer = self.server.owner._dispatch(path, form, plain,
                                                     self.headers)
        self._send(status, answer)


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, owner, ctx):
        self.owner = owner
        self.ctx = ctx
        ThreadingHTTPServer.__init__(self, ("127.0.0.1", 0), _Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ctx is None:
            return sock, addr
        # Handshake in the handler's thread, never in accept's.
        return self.ctx.wrap_socket(sock, server_side=True,
                                    do_handshake_on_connect=False), addr


class OAuth2Server:
    """The server; start() it, stop() it (or use it as a context
    manager).  cert: (cert, key) of the test PKI (Certs.server)."""

    def __init__(self, cert, ca_file=None, access_lifetime=3600,
                 device_lifetime=600, interval=1):
        self.cert = cert
        self.ca_file = ca_file
        self.lock = threading.RLock()
        self.clients = {}
        self.access = {}
        # refresh token -> Family (every token ever issued)
        self.refresh = {}
        self.devices = {}		# device_code -> Device
        self.user_codes = {}		# user_code -> Device
        self.requests = []
        self.tls_failures = []
        self.access_lifetime = access_lifetime
        self.device_lifetime = device_lifetime
        self.interval = interval
        self.issued = []		# every secret string ever handed out
        self.httpd = None
        self.plain = None
        self.threads = []
        self.strict_device_auth = False
        self.app_users = {}		# client_id -> user (see grant_mailbox)
        self.client = self.add_client("mailstow-test")

    # -- lifecycle --

    def start(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(*self.cert)
        self.httpd = _TLSServer(self, ctx)
        self.plain = _TLSServer(self, None)
        for s in (self.httpd, self.plain):
            t = threading.Thread(target=s.serve_forever,
                                 kwargs={"poll_interval": 0.05}, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        for s in (self.httpd, self.plain):
            if s is not None:
                s.shutdown()
                s.server_close()
        for t in self.threads:
            t.join(timeout=5)
        self.threads = []
        self.httpd = self.plain = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self.httpd.server_address[1]

    @property
    def base_url(self):
        return "https://127.0.0.1:%d" % self.port

    @property
    def token_url(self):
        return self.base_url + "/token"

    @property
    def device_url(self):
        return self.base_url + "/device"

    @property
    def introspect_url(self):
        return self.base_url + "/introspect"

    @property
    def introspect_url_plain(self):
        return "http://127.0.0.1:%d/introspect" % \
            self.plain.server_address[1]

    @property
    def verification_uri(self):
        return self.base_url + "/activate"

    # -- test controls --

    def _new(self, prefix, nbytes=24):
        s = "%s-%s" % (prefix, secrets.token_urlsafe(nbytes))
        self.issued.append(s)
        return s

    def add_client(self, client_id=None, secret=True):
        """A confidential client (secret=True: a random one; a string: that
        one) or a public one (secret=None)."""
        with self.lock:
            cid = client_id or "client-%s" % secrets.token_hex(4)
            if secret is True:
                secret = self._new("cs", 18) + "-Secret"
            elif secret is not None:
                self.issued.append(secret)
            c = Client(cid, secret)
            self.clients[cid] = c
            return c

    def grant_mailbox(self, client, user):
        """Let app-only (client_credentials) tokens of `client` open
        `user`'s mailbox: introspection then answers them with that
        username.  Dovecot 2.3's oauth2 passdb refuses a token whose
        introspection names no user ("No username returned") and sends
        it nothing of the login name, so an app token is tied to one
        mailbox here (a service principal granted one mailbox)."""
        with self.lock:
            self.app_users[client.client_id] = user

    def set_lifetime(self, seconds):
        """Lifetime (seconds) of access tokens issued from now on."""
        with self.lock:
            self.access_lifetime = seconds

    def expire_all_access_tokens(self):
        with self.lock:
            now = time.time()
            for a in self.access.values():
                a.expires_at = min(a.expires_at, now - 1)

    def _issue_access(self, user, client_id, scope, lifetime=None):
        life = self.access_lifetime if lifetime is None else lifetime
        a = AccessToken(self._new("at"), user, client_id, scope,
                        time.time() + life)
        self.access[a.token] = a
        return a, life

    def _token_answer(self, user, client_id, scope, family=None):
        """Issue an access token (and rotate `family`'s refresh token);
        returns (JSON answer, access, refresh)."""
        a, life = self._issue_access(user, client_id, scope)
        ans = {"access_token": a.token, "token_type": "Bearer",
               "expires_in": int(life), "scope": scope}
        rt = None
        if family is not None:
            rt = self._new("rt")
            family.current = rt
            self.refresh[rt] = family
            ans["refresh_token"] = rt
        return ans, a.token, rt

    def issue(self, user, client=None, scope="imap pop offline_access",
              lifetime=None):
        """Tokens for `user` as a completed login leaves them: dict with
        access_token, refresh_token, expires_in, expires_at (unix), scope."""
        with self.lock:
            cid = (client or self.client).client_id
            fam = Family(user, cid, scope, current=None)
            a, life = self._issue_access(user, cid, scope, lifetime)
            rt = self._new("rt")
            fam.current = rt
            self.refresh[rt] = fam
            return {"access_token": a.token, "refresh_token": rt,
                    "expires_in": int(life), "expires_at": int(a.expires_at),
                    "scope": scope}

    def approve(self, user_code, user):
        with self.lock:
            d = self.user_codes[user_code]
            d.state, d.user = "approved", user

    def deny(self, user_code):
        with self.lock:
            self.user_codes[user_code].state = "denied"

    def expire_device(self, user_code):
        with self.lock:
            self.user_codes[user_code].expires_at = time.time() - 1

    def revoke(self, what):
        """Revoke a grant, given one of its refresh tokens or a user name
        (then every grant of that user): its refresh tokens and the access
        tokens issued to it stop working, as when a user revokes an
        application's consent."""
        with self.lock:
            fams = [self.refresh[what]] if what in self.refresh else \
                [f for f in self.refresh.values() if f.user == what]
            if not fams:
                raise KeyError("no grant for %r" % what)
            for f in fams:
                f.revoked = True
                for a in self.access.values():
                    if a.user == f.user and a.client_id == f.client_id:
                        a.revoked = True

    def secrets(self):
        """Every access and refresh token, device code and client secret
        this server ever handed out."""
        with self.lock:
            return list(self.issued)

    def refresh_requests(self):
        with self.lock:
            return [r for r in self.requests
                    if r.grant_type == "refresh_token"]

    def token_requests(self):
        with self.lock:
            return [r for r in self.requests if r.path == "/token"]

    def current_refresh_token(self, refresh_token):
        """The refresh token now current in `refresh_token`'s grant."""
        with self.lock:
            return self.refresh[refresh_token].current

    def device_by_user_code(self, user_code):
        with self.lock:
            return self.user_codes.get(user_code)

    def _tls_failure(self, e):
        with self.lock:
            self.tls_failures.append(str(e))

    # -- the endpoints --

    def _dispatch(self, path, form, plain, headers):
        with self.lock:
            req = Request(time.time(), path,
                          grant_type=form.get("grant_type"),
                          client_id=form.get("client_id"))
            self.requests.append(req)
            if plain and path != "/introspect":
                st, ans = _json_error("invalid_request",
                                      "HTTPS required")
            elif path == "/token":
                st, ans = self._token(form, req)
            elif path == "/device":
                st, ans = self._device(form, req)
            elif path == "/introspect":
                st, ans = self._introspect(form, req)
            else:
                st, ans = 404, {"error": "not_found"}
            req.status = st
            req.error = ans.get("error")
            return st, ans

    def _client_auth(self, form, optional=False):
        """optional: a confidential client may leave its secret out (a
        wrong one is still refused)."""
        c = self.clients.get(form.get("client_id"))
        if c is None:
            return None, _json_error("invalid_client", "unknown client",
                                     401)
        if optional and "client_secret" not in form:
            return c, None
        if c.secret is not None and \
                not secrets.compare_digest(form.get("client_secret", ""),
                                           c.secret):
            return None, _json_error("invalid_client",
                                     "client authentication failed", 401)
        return c, None

    def _token(self, form, req):
        c, err = self._client_auth(form)
        if err:
            return err
        g = form.get("grant_type")
        if g == "refresh_token":
            return self._grant_refresh(c, form, req)
        if g == "client_credentials":
            scope = form.get("scope", "")
            ans, at, _ = self._token_answer(None, c.client_id, scope)
            req.issued_access = at
            return 200, ans
        if g == DEVICE_GRANT:
            return self._grant_device(c, form, req)
        return _json_error("unsupported_grant_type", "grant %r" % g)

    def _grant_refresh(self, c, form, req):
        rt = form.get("refresh_token", "")
        req.presented = rt
        fam = self.refresh.get(rt)
        if fam is None:
            req.presented_state = "unknown"
            return _json_error("invalid_grant", "unknown refresh token")
        if fam.revoked:
            req.presented_state = "revoked"
            return _json_error("invalid_grant", "the grant was revoked")
        if fam.client_id != c.client_id:
            req.presented_state = "wrong-client"
            return _json_error("invalid_grant", "issued to another client")
        if rt == fam.current:
            req.presented_state = "current"
            # Its successor is used: the grace of the one before ends.
            if fam.previous is not None:
                fam.retired.add(fam.previous)
            fam.previous = rt
        elif rt == fam.previous:
            req.presented_state = "previous"
            fam.retired.add(fam.current)	# never used: dropped
        else:
            req.presented_state = "retired"
            return _json_error("invalid_grant",
                               "refresh token was rotated")
        req.user = fam.user
        ans, at, new = self._token_answer(fam.user, c.client_id, fam.scope,
                                          fam)
        req.issued_access, req.issued_refresh = at, new
        return 200, ans

    def _device(self, form, req):
        # RFC 8628 3.1 wants confidential clients to authenticate here
        # too; Google's endpoint takes client_id alone, and so do we
        # unless strict_device_auth (req.secret_sent tells the test).
        req.secret_sent = "client_secret" in form
        c, err = self._client_auth(form, not self.strict_device_auth)
        if err:
            return err
        code = "%s-%s" % (secrets.token_hex(2).upper(),
                          secrets.token_hex(2).upper())
        d = Device(self._new("dc"), code, c.client_id, form.get("scope", ""),
                   time.time() + self.device_lifetime, self.interval)
        self.devices[d.device_code] = d
        self.user_codes[code] = d
        req.presented = d.device_code
        return 200, {"device_code": d.device_code, "user_code": code,
                     "verification_uri": self.verification_uri,
                     "verification_uri_complete":
                     "%s?code=%s" % (self.verification_uri, code),
                     "expires_in": int(self.device_lifetime),
                     "interval": d.interval}

    def _grant_device(self, c, form, req):
        dc = form.get("device_code", "")
        req.presented = dc
        d = self.devices.get(dc)
        if d is None or d.client_id != c.client_id or d.state == "used":
            req.presented_state = "unknown"
            return _json_error("invalid_grant", "unknown device code")
        now = time.time()
        too_soon = d.last_poll is not None and \
            now - d.last_poll < d.interval - 0.25
        d.last_poll = now
        req.presented_state = d.state
        if now >= d.expires_at:
            return _json_error("expired_token", "the device code expired")
        if d.state == "denied":
            return _json_error("access_denied", "the user declined")
        if too_soon:
            d.interval += 5		# RFC 8628 3.5
            return _json_error("slow_down", "polling too fast")
        if d.state == "pending":
            return _json_error("authorization_pending", "not yet")
        d.state = "used"
        fam = Family(d.user, c.client_id, d.scope, current=None)
        req.user = d.user
        ans, at, rt = self._token_answer(d.user, c.client_id, d.scope, fam)
        req.issued_access, req.issued_refresh = at, rt
        return 200, ans

    def _introspect(self, form, req):
        tok = form.get("token", "")
        req.presented = tok
        a = self.access.get(tok)
        if a is None:
            req.presented_state = "unknown"
        elif a.revoked:
            req.presented_state = "revoked"
        elif a.expires_at <= time.time():
            req.presented_state = "expired"
        else:
            req.presented_state = "active"
            req.user = a.user
            ans = {"active": True, "token_type": "Bearer",
                   "client_id": a.client_id, "scope": a.scope,
                   "exp": int(a.expires_at)}
            user = a.user if a.user is not None else \
                self.app_users.get(a.client_id)
            if user is not None:
                ans["username"] = user
            return 200, ans
        return 200, {"active": False}

