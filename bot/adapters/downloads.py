"""Fetching a file a user attached, and uploading one they accepted: only to allowed hosts, with a size cap.

The URLs come from the activity, so they are input: a forged attachment must not make the bot fetch from, or
send pass values to, anywhere else.
"""

from __future__ import annotations

import fnmatch
import logging

import aiohttp
from yarl import URL

from bot.domain.errors import TapError

logger = logging.getLogger(__name__)

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
TIMEOUT = aiohttp.ClientTimeout(total=60)
CHUNK_BYTES = 64 * 1024
INCOMPLETE = "The file arrived incomplete; send it again."


class TransferRefused(TapError):
    """The file cannot be fetched or sent; the sentence says why and what to do."""


class FileTransfers:
    def __init__(self, allowed_hosts: tuple[str, ...], max_bytes: int) -> None:
        self._allowed = tuple(pattern.lower() for pattern in allowed_hosts)
        self._max_bytes = max_bytes

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    def is_allowed(self, url: str) -> bool:
        try:
            parsed = URL(url)
        except ValueError:
            return False
        host = (parsed.host or "").lower()
        if not host or parsed.user or parsed.password:
            return False
        if parsed.scheme != "https" and not (parsed.scheme == "http" and host in LOOPBACK):
            return False
        authority = f"{host}:{parsed.port}" if parsed.port else host
        return any(fnmatch.fnmatchcase(host, pattern) or pattern == authority for pattern in self._allowed)

    async def fetch(self, url: str) -> bytes:
        """The whole file, or a refusal: a body cut short is never handed on as if it were the file."""
        if not self.is_allowed(url):
            raise TransferRefused(
                "I only download attachments from your organisation's SharePoint or OneDrive, and this one comes "
                "from somewhere else. Attach the file again from Teams."
            )
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.get(url, allow_redirects=False) as response,
            ):
                if response.status != 200:
                    raise TransferRefused(
                        f"Teams would not give me the file (HTTP {response.status}). Attach it again."
                    )
                declared = response.content_length
                if declared is not None and declared > self._max_bytes:
                    raise TransferRefused(self._too_big())
                chunked = "chunked" in response.headers.get("Transfer-Encoding", "").lower()
                if declared is None and not chunked:
                    # A body that simply ends when the connection closes cannot show that it is complete.
                    raise TransferRefused(INCOMPLETE)
                data = bytearray()
                # One read() returns what has arrived so far, not the file: read chunk by chunk to the end.
                async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                    data += chunk
                    if len(data) > self._max_bytes:
                        raise TransferRefused(self._too_big())
                encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
                if declared is not None and not encoded and len(data) != declared:
                    raise TransferRefused(INCOMPLETE)
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as error:
            logger.warning("attachment download cut short: %s", type(error).__name__)
            raise TransferRefused(INCOMPLETE) from None
        except aiohttp.ClientError as error:
            logger.warning("attachment download failed: %s", type(error).__name__)
            raise TransferRefused("I could not download the file; attach it again in a minute.") from None
        except TimeoutError:
            raise TransferRefused("Downloading the file took too long; attach it again in a minute.") from None
        return bytes(data)

    async def upload(self, url: str, data: bytes) -> None:
        """Sends an accepted file to Teams' upload URL (a OneDrive upload session) in one range."""
        if not self.is_allowed(url):
            raise TransferRefused("Teams offered an upload address I don't trust, so I sent nothing.")
        headers = {"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}", "Content-Length": str(len(data))}
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.put(url, data=data, headers=headers, allow_redirects=False) as response,
            ):
                if response.status not in (200, 201):
                    raise TransferRefused(f"Teams refused the file (HTTP {response.status}); ask for it again.")
        except aiohttp.ClientError as error:
            logger.warning("file upload failed: %s", type(error).__name__)
            raise TransferRefused("I could not upload the file; ask for it again in a minute.") from None

    def _too_big(self) -> str:
        limit = self._max_bytes
        shown = f"{limit / 1024**2:g} MB" if limit >= 1024**2 else f"{limit / 1024:g} KB"
        return f"The file is larger than {shown}. Split it into smaller files, or remove columns the bot does not need."
