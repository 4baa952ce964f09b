"""msgraph's request adapter and kiota's redirect and retry handlers, without the OpenTelemetry spans they open for
nothing.

kiota opens its spans on OpenTelemetry's global tracer: about ten per request (the adapter's send, its HTTP response,
the request built, the CAE check; each handler's enable and attempt spans), each with attributes, the request's URL
parsed once more with urllib for them. tapbot never sets a global tracer provider (bot/telemetry.py exports through
its own providers: kiota records full URLs), so every one of them is OpenTelemetry's no-op span. While no global
provider is set, these classes skip them; once one is (in code, or by OTEL_PYTHON_TRACER_PROVIDER), every span is
opened by kiota's own code again, as before. Authentication, the request kiota builds, its error mapping, its CAE
retry, the redirects and retries are kiota's own code either way (the retry handler no longer works out a delay it
would not use).
"""

from __future__ import annotations

from typing import Any

import httpx
from kiota_abstractions.request_information import RequestInformation
from kiota_http._exceptions import RequestError
from kiota_http.middleware import RedirectHandler, RetryHandler
from kiota_http.middleware.middleware import PARENT_SPAN_KEY, REQUEST_OPTIONS_KEY, BaseMiddleware
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from opentelemetry import trace

from bot.adapters.graph_urls import expanded_url
from bot.telemetry import global_tracer_set

# The span handed around in place of kiota's while nothing traces it: a no-op span, told apart by identity.
UNTRACED: trace.Span = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)


def kiota_traced() -> bool:
    """Whether kiota's spans would go anywhere: only once a global tracer provider is set (kiota's tracer is
    OpenTelemetry's proxy, a no-op until then)."""
    return global_tracer_set()


class GraphAdapter(GraphRequestAdapter):
    """msgraph's request adapter, opening kiota's spans only when a tracer provider would record them."""

    def start_tracing_span(self, request_info: RequestInformation, method: str) -> trace.Span:
        if kiota_traced():
            return super().start_tracing_span(request_info, method)
        return UNTRACED

    def _start_local_tracing_span(self, name: str, parent_span: trace.Span) -> trace.Span:
        if parent_span is UNTRACED:
            return UNTRACED
        return super()._start_local_tracing_span(name, parent_span)

    def get_request_from_request_information(
        self, request_info: RequestInformation, parent_span: trace.Span, attribute_span: trace.Span
    ) -> httpx.Request:
        """kiota's, less the span attributes (the URL parsed again with urllib for them) when nothing records them,
        and with the URL expanded from its compiled template (graph_urls.expanded_url: the same URL kiota's expander
        gives)."""
        if parent_span is not UNTRACED:
            return super().get_request_from_request_information(request_info, parent_span, attribute_span)
        method = request_info.http_method
        if not method:
            raise RequestError("HTTP method must be provided")
        request_options: dict[str, Any] = {
            self.observability_options.get_key(): self.observability_options,
            "parent_span": parent_span,
            **request_info.request_options,
        }
        return self._http_client.build_request(
            method=method.value,
            url=_expanded(request_info),
            headers=request_info.request_headers,
            content=request_info.content,
            extensions={REQUEST_OPTIONS_KEY: request_options},
        )


def _expanded(request_info: RequestInformation) -> str:
    """The request's URL: the one set on it (kiota's `url` setter keeps it apart and clears the parameters), or its
    template expanded by graph_urls.expanded_url, or by kiota when that declines."""
    if vars(request_info).get("_RequestInformation__uri"):
        return request_info.url
    return expanded_url(request_info) or request_info.url


class _SpansWhenTraced(BaseMiddleware):
    def _create_observability_span(self, request: httpx.Request, span_name: str) -> trace.Span:
        extensions = request.extensions
        options = extensions.get(REQUEST_OPTIONS_KEY)
        parent = options.get("parent_span") if options else None
        if parent is UNTRACED:
            extensions[PARENT_SPAN_KEY] = parent  # as kiota's does, for the handlers below
            return UNTRACED
        if parent is None and extensions.get(PARENT_SPAN_KEY) is UNTRACED:
            return UNTRACED
        return super()._create_observability_span(request, span_name)


class Redirects(_SpansWhenTraced, RedirectHandler):
    """kiota's RedirectHandler, its spans opened only when traced."""


class Retries(_SpansWhenTraced, RetryHandler):
    """kiota's RetryHandler, its spans opened only when traced."""

    def get_delay_time(
        self, retry_count: int, response: httpx.Response | None = None, delay: float = RetryHandlerOption.DEFAULT_DELAY
    ) -> float:
        # kiota works the delay out after every answer (Retry-After parsed, a jitter drawn), and uses it only for a
        # status it retries.
        if response is not None and response.status_code not in self.retry_on_status_codes:
            return 0.0
        return super().get_delay_time(retry_count, response, delay)
