"""The sandbox's access log: method, path and status, never the query string.

aiohttp's default format logs the request line with its query, and the token service's queries carry magic codes
(`GetToken?code=`) and sign-in ids (`/api/oauth/signin?signin=`), which must not reach a log (issue 14).
"""

from __future__ import annotations

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse


class PathOnlyAccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.3fs', request.remote or "-", request.method, request.path, response.status, time
        )
