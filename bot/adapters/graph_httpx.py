"""httpx's AsyncClient, building and sending the requests kiota hands it in one pass instead of httpx's general path.

kiota's adapter calls `build_request` (an absolute URL it expanded, a dict of headers, bytes or no body) and `send`
(no authentication, no redirects followed: kiota's middleware, under this client, does both). For those requests
httpx's general path does work that changes nothing: it copies the headers three times and works their encoding out
again after each copy; it runs an authentication flow (an async generator) and a redirect loop around the one
request. The two methods below make the same `httpx.Request` (method, URL, headers in the same order, extensions,
body) and send it the same way (event hooks, transport, cookies, `next_request` of a redirect answer, body read),
with none of that; any other use of the client takes httpx's own path (tests/adapters/test_graph_httpx.py compares
both).

The URL is parsed once, as httpx parses it (`graph_url`): httpx checks and percent-encodes every character of each
URL in Python; a URL kiota expanded is already encoded, so only its scheme and host (the same on every request) go
through httpx's parser, once.
"""

from __future__ import annotations

import functools
import re
from typing import Any, cast

import httpx
from httpx._client import BoundAsyncStream, ClientState, UseClientDefault
from httpx._exceptions import request_context
from httpx._types import (
    AuthTypes,
    CookieTypes,
    HeaderTypes,
    QueryParamTypes,
    RequestContent,
    RequestData,
    RequestExtensions,
    RequestFiles,
    TimeoutTypes,
)
from httpx._urlparse import MAX_URL_LENGTH, ParseResult

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# An absolute URL whose path and query httpx would leave as they are: only the printable ASCII characters it does not
# percent-encode there (its PATH_SAFE and QUERY_SAFE sets, `%` included), no fragment. Anything else is httpx's.
_ENCODED_URL = re.compile(
    r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*)"
    r"(/[!$%&'()*+,\-./0-9:;=@A-Z\[\\\]^_a-z|~]*)?"
    r"(?:\?([!$%&'()*+,\-./0-9:;=?@A-Z\[\\\]^_`a-z{|}~]*))?"
)


@functools.lru_cache(maxsize=32)
def _origin(scheme_and_authority: str) -> ParseResult:
    return httpx.URL(scheme_and_authority)._uri_reference


def graph_url(url: str) -> httpx.URL:
    """`httpx.URL(url)`, parsing only the scheme and host when the rest needs nothing from httpx's parser."""
    found = _ENCODED_URL.fullmatch(url) if len(url) <= MAX_URL_LENGTH else None
    if found is None:
        return httpx.URL(url)
    origin, path, query = found.group(1, 2, 3)
    path = path or ""
    if "." in path and any(segment in (".", "..") for segment in path.split("/")):
        return httpx.URL(url)  # dot segments: httpx's to remove
    try:
        parsed_origin = _origin(origin)
    except httpx.InvalidURL:
        return httpx.URL(url)  # httpx's own error
    parsed = httpx.URL.__new__(httpx.URL)
    parsed._uri_reference = parsed_origin._replace(path=path, query=query)
    return parsed


class OnePassClient(httpx.AsyncClient):
    def build_request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        timeout: TimeoutTypes | UseClientDefault = httpx.USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> httpx.Request:
        request_url = (
            graph_url(url)
            if type(url) is str
            and (content is None or type(content) is bytes)
            and (headers is None or type(headers) is dict)
            and data is None
            and files is None
            and json is None
            and params is None
            and cookies is None
            and isinstance(timeout, UseClientDefault)
            and (extensions is None or "timeout" not in extensions)
            and not self.params
            and not self.cookies
            else None
        )
        if request_url is None or request_url.is_relative_url:
            return super().build_request(
                method,
                url,
                content=content,
                data=data,
                files=files,
                json=json,
                params=params,
                headers=headers,
                cookies=cookies,
                timeout=timeout,
                extensions=extensions,
            )
        # The client's headers, less those the request names (any case), then the request's: httpx's merge.
        given = httpx.Headers(headers)._list
        named = {lookup for _, lookup, _ in given}
        merged = [item for item in self.headers._list if item[1] not in named]
        merged.extend(given)
        body = cast(bytes, content or b"")
        method = method.upper()
        present = {lookup for _, lookup, _ in merged}
        # httpx's Request: the body's Content-Length unless given, then Host and a POST's `Content-Length: 0` first.
        if body and b"content-length" not in present:
            merged.append((b"Content-Length", b"content-length", str(len(body)).encode()))
            present.add(b"content-length")
        first: list[tuple[bytes, bytes, bytes]] = []
        if b"host" not in present and request_url.host:
            first.append((b"Host", b"host", request_url.netloc))
        if b"content-length" not in present and b"transfer-encoding" not in present and method in _BODY_METHODS:
            first.append((b"Content-Length", b"content-length", b"0"))
        request_headers = httpx.Headers()
        request_headers._list = first + merged if first else merged
        request = httpx.Request.__new__(httpx.Request)
        request.method = method
        request.url = request_url
        request.headers = request_headers
        request.extensions = {**(extensions or {}), "timeout": self.timeout.as_dict()}
        request.stream = httpx.ByteStream(body)
        request._content = body  # type: ignore[attr-defined]  # as Request.read() leaves it
        return request

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: AuthTypes | UseClientDefault | None = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        if (
            self._state is ClientState.CLOSED
            or not isinstance(auth, UseClientDefault)
            or not isinstance(follow_redirects, UseClientDefault)
            or self._auth is not None
            or self.follow_redirects
            or self.max_redirects < 0
            or request.url.userinfo
        ):
            return await super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)
        self._state = ClientState.OPENED
        self._set_timeout(request)
        for hook in self._event_hooks["request"]:
            await hook(request)
        response = await self._send_single_request(request)
        try:
            for hook in self._event_hooks["response"]:
                await hook(response)
            response.history = []
            if response.has_redirect_location:
                response.next_request = self._build_redirect_request(request, response)
            if not stream:
                await _read(response)
            return response
        except BaseException:
            await response.aclose()
            raise


async def _read(response: httpx.Response) -> None:
    """`response.aread()` for a body already in memory (our transports' ByteStream, under the stream httpx binds to
    the response to time it): the same content, decoded by its Content-Encoding, the same state and elapsed time,
    without the four nested async generators httpx reads a body through."""
    bound = response.stream
    inner = getattr(bound, "_stream", None)
    if (
        type(bound) is not BoundAsyncStream
        or type(inner) is not httpx.ByteStream
        or hasattr(response, "_content")
        or response.is_stream_consumed
        or response.is_closed
    ):
        await response.aread()
        return
    raw: bytes = inner._stream  # type: ignore[attr-defined]
    response.is_stream_consumed = True
    response._num_bytes_downloaded = len(raw)  # type: ignore[attr-defined]
    decoder = response._get_content_decoder()
    with request_context(request=response._request):  # type: ignore[attr-defined]
        decoded = decoder.decode(raw) if raw else b""
    await response.aclose()  # as httpx's, once the raw body is read: sets `elapsed`
    with request_context(request=response._request):  # type: ignore[attr-defined]
        decoded += decoder.flush()
    response._content = decoded  # type: ignore[attr-defined]
