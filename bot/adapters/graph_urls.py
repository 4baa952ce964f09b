"""Graph request URLs expanded from compiled URI templates instead of kiota's pure-Python expander."""

from __future__ import annotations

import functools
import re
from typing import cast
from urllib.parse import quote

import httpx
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware import BaseMiddleware, ParametersNameDecodingHandler
from kiota_http.middleware.options import ParametersNameDecodingHandlerOption

# --- URL expansion --------------------------------------------------------------------------------------------
# kiota expands each request's URI template (RFC 6570) with a character-by-character pure-Python expander: about a
# sixth of the bot's CPU per command. The templates msgraph generates use three forms only: `{+baseurl}`, `{name}`
# and `{?a,b}`. Those are compiled once per template here and expanded with `urllib.parse.quote`; anything else
# (or a value of another type) returns None and the SDK expands it as before. Tests compare both expansions.
# The query's names come out as kiota's ParametersNameDecodingHandler would send them (`$select`, not the template's
# `%24select`), decoded once per template, so that handler has nothing left to change (ParameterNamesDecoded below).
_EXPRESSION = re.compile(r"\{([+?]?)([^{}]*)\}")
_RESERVED_SAFE = ":/?#[]@!$&'()*+,;="
_PERCENT_TRIPLET = re.compile(r"%[0-9A-Fa-f]{2}")
# Values `quote` would return unchanged (most: ids, the base URL), returned without calling it.
_NOTHING_TO_QUOTE = re.compile(r"[A-Za-z0-9_.~-]*")
_NOTHING_TO_QUOTE_RESERVED = re.compile(r"[A-Za-z0-9_.~:/?#\[\]@!$&'()*+,;=%-]*")


@functools.lru_cache(maxsize=256)
def _compiled(template: str) -> tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] | None:
    """The template's parts: (operator, literal, names), a name paired with the name sent (decoded in a query)."""
    parts: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
    position = 0
    for found in _EXPRESSION.finditer(template):
        if found.start() > position:
            parts.append(("", template[position : found.start()], ()))
        operator, names = found.group(1), tuple(found.group(2).split(","))
        if any(not name or name.endswith("*") or ":" in name for name in names) or (operator == "+" and len(names) > 1):
            return None  # explode and prefix modifiers, or several reserved variables: leave to the SDK
        sent = tuple((name, _decoded_name(name) if operator == "?" else name) for name in names)
        parts.append((operator or "=", "", sent))
        position = found.end()
    tail = template[position:]
    if "{" in tail or "}" in tail:
        return None
    if tail:
        parts.append(("", tail, ()))
    return tuple(parts)


def _rendered(value: object, *, reserved: bool) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if reserved:
            if "%" in value and "%" in _PERCENT_TRIPLET.sub("", value):
                return None  # a lone '%' in a reserved expansion: the SDK decides
            if _NOTHING_TO_QUOTE_RESERVED.fullmatch(value):
                return value
            return quote(value, safe=_RESERVED_SAFE + "%")
        if _NOTHING_TO_QUOTE.fullmatch(value):
            return value
        return quote(value, safe="")
    if isinstance(value, list) and not reserved:
        try:
            # Names, not values, most of the time (`$select`): when no item needs quoting, neither does the list.
            if _NOTHING_TO_QUOTE.fullmatch("".join(cast(list[str], value))):
                return ",".join(cast(list[str], value))
        except TypeError:
            pass  # an item that is not a str: one by one below
        items = [_rendered(item, reserved=False) for item in cast(list[object], value)]
        if any(item is None for item in items):
            return None
        return ",".join(cast(list[str], items))
    return None


@functools.lru_cache(maxsize=32)
def _reserved(value: str) -> str | None:
    return _rendered(value, reserved=True)


def expanded_url(request: RequestInformation) -> str | None:
    """The request's URL as kiota would expand it and send it (query names decoded), or None to let kiota do it (a
    raw URL, an unusual template)."""
    path_parameters = request.path_parameters
    if path_parameters.get(RequestInformation.RAW_URL_KEY) or not request.url_template:
        return None
    compiled = _compiled(request.url_template)
    if compiled is None:
        return None
    query_parameters = request.query_parameters
    sanitize = request._get_sanitized_value  # a plain str is returned as it is (a str enum is not a plain str)
    out: list[str] = []
    for operator, literal, names in compiled:
        if not operator:
            out.append(literal)
            continue
        separator = "?"
        reserved = operator == "+"
        for name, sent_name in names:
            # A path parameter wins over a query parameter of the same name, as in kiota's expansion.
            value = path_parameters[name] if name in path_parameters else query_parameters.get(name)
            if value is None:
                continue  # undefined: RFC 6570 leaves it out
            if type(value) is str:  # most values: ids, the base URL (the only reserved one: a few, cached)
                if reserved:
                    rendered = _reserved(value)
                elif _NOTHING_TO_QUOTE.fullmatch(value):
                    rendered = value
                else:
                    rendered = quote(value, safe="")
            else:
                value = sanitize(value)
                if value is None or value == []:
                    continue
                rendered = _rendered(value, reserved=reserved)
            if rendered is None:
                return None
            if operator == "?":
                out.append(f"{separator}{sent_name}={rendered}")
                separator = "&"
            else:
                out.append(rendered)
    return "".join(out)


# --- query parameter names --------------------------------------------------------------------------------------
# kiota's templates percent-encode the names of OData's system query options (`%24select`) and its
# ParametersNameDecodingHandler decodes them again in every request's URL: Graph documents the `$` names ("Use query
# parameters to customize responses"; the `$` prefix is optional only on beta and some v1.0 APIs) and does not say
# that the encoded ones are accepted. The handler below sends the same names, without re-parsing a URL whose names
# are already decoded (every URL expanded above), and without opening a span per request.
_DEFAULT_DECODING = ParametersNameDecodingHandlerOption()
_DECODER = ParametersNameDecodingHandler(_DEFAULT_DECODING)


def _decoded_name(name: str) -> str:
    return _DECODER.decode_uri_encoded_string(name, _DEFAULT_DECODING.characters_to_decode)


class ParameterNamesDecoded(ParametersNameDecodingHandler):
    """kiota's ParametersNameDecodingHandler, changing the URL only when a name in its query does change: kiota's
    rebuilds (and httpx re-parses) every URL whose query holds a `%` anywhere, a `$filter` value's space included."""

    async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
        options = self._get_current_options(request)
        if options.enabled and options.characters_to_decode:
            query = request.url.query
            if b"%" in query:
                text = query.decode("utf-8")
                decoded = self.decode_uri_encoded_string(text, options.characters_to_decode)
                if decoded != text:
                    request.url = request.url.copy_with(query=decoded.encode("utf-8"))
        return await BaseMiddleware.send(self, request, transport)
