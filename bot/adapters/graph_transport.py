"""Graph's HTTP/1.1 connections through aiohttp's client instead of httpcore, under httpx's request and response types.

The SDK stays the Graph client: kiota builds an `httpx.Request`, its middleware (redirects, 503/504 retries, the
pacer, telemetry) wraps this transport, and it reads the `httpx.Response` this transport returns, as before. Only the
bottom layer changes: httpcore's pure-Python HTTP/1.1 (h11, anyio locks, its own URL and header models) cost about
twice the CPU of aiohttp's C parser and connection pool per Graph request (README, "Why these libraries": figures).
The bytes on the wire stay httpx's: the URL exactly as httpx encoded it, its headers (none added), the body raw and
still encoded (httpx decodes gzip as before), TLS with httpx's own certificate bundle and settings, and httpx's
timeouts and exceptions, so every caller's `except httpx.HTTPError` and the timeout handling stay as they were.

An egress proxy named by the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, as httpx, azure-identity and
curl read them) carries Graph's requests too: read once when the transport is made, decided once per host.
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
import urllib.request

import aiohttp
import httpx
from yarl import URL

# httpx's default pool: at most 100 connections (it kept 20 idle ones for 5 s; aiohttp keeps every idle one, which
# under 50 operators at once saves reconnecting, a TLS handshake each against Graph).
MAX_CONNECTIONS = 100
KEEPALIVE_S = 15.0
# h11 accepted header lines of up to 16 KiB; aiohttp's default is 8 KiB. Graph's claims challenges and diagnostics
# headers stay far below either.
MAX_HEADER_BYTES = 16 * 1024
# Headers aiohttp would add when httpx's request lacks them: the request goes out with httpx's headers only.
NOT_ADDED = frozenset({"Accept", "Accept-Encoding", "User-Agent", "Content-Type"})


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An `httpx.AsyncBaseTransport` that sends each request on a pooled aiohttp connection.

    The aiohttp session is opened on the first request (it belongs to the running event loop) and closed by `aclose`.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        # certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR, loaded now as httpx's transport did: a bundle that cannot
        # be loaded stops start-up, rather than failing every Graph call with an error no caller expects.
        self._ssl_context = ssl_context or httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self._proxies = urllib.request.getproxies_environment()
        self._proxy_by_host: dict[tuple[str, str], str | None] = {}

    def _proxy_for(self, url: httpx.URL) -> str | None:
        """The proxy the environment names for this URL's scheme, unless NO_PROXY exempts its host. This machine's
        own loopback (a sandbox, a local test double) is never sent to a proxy, which could not reach it."""
        key = (url.scheme, url.host)
        if key not in self._proxy_by_host:
            bypass = _is_loopback(url.host) or bool(urllib.request.proxy_bypass(url.host))
            self._proxy_by_host[key] = None if bypass else self._proxies.get(url.scheme)
        return self._proxy_by_host[key]

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=MAX_CONNECTIONS,
                limit_per_host=0,
                keepalive_timeout=KEEPALIVE_S,
                ssl=self._ssl_context,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # httpx's client keeps the cookies (Graph sets none)
                auto_decompress=False,  # httpx decodes the body by its Content-Encoding, as it does for httpcore's
                timeout=aiohttp.ClientTimeout(total=None),
                max_line_size=MAX_HEADER_BYTES,
                max_field_size=MAX_HEADER_BYTES,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        body = await request.aread()
        try:
            async with session.request(
                request.method,
                URL(str(request.url), encoded=True),  # as httpx encoded it: yarl must not re-quote `$filter`
                headers=request.headers.multi_items(),
                data=body or None,
                skip_auto_headers=NOT_ADDED,
                allow_redirects=False,  # kiota's RedirectHandler follows them
                timeout=_timeout(request),
                proxy=self._proxy_for(request.url) if self._proxies else None,
            ) as answer:
                content = await answer.read()
                return httpx.Response(
                    answer.status,
                    headers=answer.raw_headers,
                    stream=httpx.ByteStream(content),
                    request=request,
                    extensions={"http_version": b"HTTP/1.1", "reason_phrase": (answer.reason or "").encode()},
                )
        except aiohttp.ClientError as error:
            raise _as_httpx(error, request) from error
        except TimeoutError as error:  # aiohttp's timeouts are asyncio's TimeoutError
            raise httpx.ReadTimeout(str(error) or "timed out", request=request) from error

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    """httpx's per-request timeouts (the client's `httpx.Timeout`): waiting for a pooled connection plus connecting,
    connecting, and each read. aiohttp has no write timeout (a request body goes to the socket buffer at once)."""
    limits: dict[str, float | None] = request.extensions.get("timeout") or {}
    return _client_timeout(limits.get("connect"), limits.get("pool"), limits.get("read"))


@functools.lru_cache(maxsize=16)
def _client_timeout(connect: float | None, pool: float | None, read: float | None) -> aiohttp.ClientTimeout:
    """One (frozen) ClientTimeout per distinct limits: every request of a client has the same."""
    acquire = None if connect is None or pool is None else connect + pool
    return aiohttp.ClientTimeout(total=None, connect=acquire, sock_connect=connect, sock_read=read)


def _as_httpx(error: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception httpcore would have raised for the same failure."""
    message = str(error) or type(error).__name__
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(error, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(error, aiohttp.ClientOSError):
        return httpx.ReadError(message, request=request)
    return httpx.TransportError(message, request=request)
