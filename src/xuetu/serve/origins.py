"""Host and Origin checks: what keeps web pages the user visits away from a server on their machine.

DNS rebinding: a page on evil.example makes its own name resolve to 127.0.0.1, and the browser then treats the
server as evil.example's, sending `Host: evil.example`. Cross-site requests: a page posts to
http://127.0.0.1:8000 from its own origin, sending `Origin: https://evil.example`. Both are refused with 403.

Host passes when it is loopback (localhost, *.localhost), an IP address (rebinding needs a DNS name; a page
whose address is an IP literal came from that IP), the name the server binds, or a host the operator allows
(`--allowed-host`, XUETU_HOSTS; "*" allows any). It is checked on a keyless server, and on any server bound to
a loopback address; a keyed server on the network skips it, so reverse proxies that forward their own names
keep working there, and a rebinding page cannot send the key anyway.

Origin passes when the header is absent (clients that are not browsers), same-origin (it names the Host the
request was sent to), loopback (http(s)://localhost, 127.0.0.1, [::1], any port), a desktop app's scheme
(app:, file:, tauri:, vscode-webview:, as Ollama allows), or an origin the operator allows (`--origin`/`--cors`,
XUETU_ORIGINS; "*" allows any). It is checked on every server, as Ollama does: browsers never attach a bearer
key by themselves, but what a keyless server does for one request they can be made to send.
"""

from __future__ import annotations

import ipaddress

from xuetu.serve.errors import error_response

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
APP_SCHEMES = ("app", "file", "tauri", "vscode-webview")


def split_host(value: str) -> tuple[str, str]:
    """'Example.COM:8000' -> ('example.com', '8000'); '[::1]:80' -> ('::1', '80')."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        return name, rest.removeprefix(":")
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        return name.rstrip("."), port
    return value.rstrip("."), ""


def is_loopback(name: str) -> bool:
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _listed(name: str, allowed: set[str]) -> bool:
    """Exact names, "*" for any, ".example.com" or "*.example.com" for a domain and its subdomains."""
    if "*" in allowed or name in allowed:
        return True
    return any(a.startswith((".", "*.")) and (name.endswith(a.lstrip("*")) or name == a.lstrip("*.")) for a in allowed)


class HostOriginCheck:
    """403 for a request whose Host or Origin is not allowed (see the module docstring)."""

    def __init__(self, app, hosts: list[str], origins: list[str], check_host: bool = True):
        self.app, self.check_host = app, check_host
        self.hosts = {split_host(h)[0] for h in hosts if h.strip()}
        self.origins = {o.strip().lower().rstrip("/") for o in origins if o.strip()}

    def host_allowed(self, host: str | None) -> bool:
        if not self.check_host or host is None:  # HTTP/1.0 without Host: not a browser
            return True
        name, _ = split_host(host)
        return is_loopback(name) or is_ip(name) or _listed(name, self.hosts)

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        if origin is None or "*" in self.origins:
            return True
        origin = origin.strip().lower()
        if origin.rstrip("/") in self.origins:
            return True
        scheme, sep, netloc = origin.partition("://")
        if not sep:  # "null": a sandboxed frame, a redirect, a file: page
            return False
        if scheme in APP_SCHEMES:
            return True
        if scheme not in ("http", "https"):
            return False
        if host is not None and netloc == host.strip().lower():
            return True  # same origin
        return is_loopback(split_host(netloc)[0])

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        host = headers.get(b"host")
        host = host.decode("latin-1") if host is not None else None
        origin = headers.get(b"origin")
        origin = origin.decode("latin-1") if origin is not None else None
        if not self.host_allowed(host):
            name = split_host(host)[0]
            message = (f"host {name!r} is not allowed: this server answers to localhost and the hosts its operator "
                       f"allows (DNS rebinding protection). To allow it, start the server with --allowed-host "
                       f"{name} or set XUETU_HOSTS={name}")
            return await error_response(scope["path"], 403, message, type="permission_error",
                                        code="host_not_allowed")(scope, receive, send)
        if not self.origin_allowed(origin, host):
            message = (f"origin {origin!r} is not allowed: browser pages from other sites cannot use this server. "
                       f"To allow it, start the server with --origin {origin} or set XUETU_ORIGINS={origin}")
            return await error_response(scope["path"], 403, message, type="permission_error",
                                        code="origin_not_allowed")(scope, receive, send)
        return await self.app(scope, receive, send)
