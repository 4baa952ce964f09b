"""The sandbox's stand-in for SharePoint/OneDrive: files a test or a person attaches to the bot are served here.

`POST /_sandbox/files?name=users.csv` with the bytes as body answers the download URL a Teams file attachment
would carry (`content.downloadUrl`); `GET` on that URL returns the bytes. `PUT /_sandbox/uploads/{name}` plays
the upload session of Teams' file-consent flow and answers where the file can be read back. Kept in memory.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from bot.sandbox.app_keys import HOSTED_FILES

MAX_HOSTED_BYTES = 64 * 1024 * 1024


def setup_file_routes(app: web.Application, prefix: str) -> None:
    app[HOSTED_FILES] = {}
    app.router.add_post(f"{prefix}/files", host_file)
    app.router.add_get(f"{prefix}/files/{{file_id}}/{{name}}", download_file)
    app.router.add_put(f"{prefix}/uploads/{{name}}", receive_upload)


async def host_file(request: web.Request) -> web.Response:
    name = request.query.get("name", "file.csv").replace("/", "_")[:200] or "file.csv"
    data = await _whole_body(request)
    if len(data) > MAX_HOSTED_BYTES:
        return web.json_response({"error": "file too large for the sandbox"}, status=413)
    file_id = uuid.uuid4().hex
    request.app[HOSTED_FILES][file_id] = (name, data)
    url = request.url.with_path(f"{request.path}/{file_id}/{name}").with_query(None)
    return web.json_response({"downloadUrl": str(url), "uniqueId": file_id, "name": name, "size": len(data)})


async def receive_upload(request: web.Request) -> web.Response:
    """Stands in for a OneDrive upload session (Teams' file-consent flow): one PUT with the whole range."""
    data = await _whole_body(request)
    if len(data) > MAX_HOSTED_BYTES:
        return web.json_response({"error": "file too large for the sandbox"}, status=413)
    expected = f"bytes 0-{len(data) - 1}/{len(data)}"
    if request.headers.get("Content-Range") != expected:
        return web.json_response({"error": f"Content-Range must be {expected}"}, status=400)
    file_id = uuid.uuid4().hex
    name = request.match_info["name"]
    request.app[HOSTED_FILES][file_id] = (name, data)
    url = request.url.with_path(f"{request.path.rsplit('/uploads/', 1)[0]}/files/{file_id}/{name}").with_query(None)
    return web.json_response({"id": file_id, "name": name, "size": len(data), "webUrl": str(url)}, status=201)


async def _whole_body(request: web.Request) -> bytes:
    """The body to its end (or one byte past the cap): `content.read(n)` returns what has arrived so far, which
    for a chunked upload is only the first chunk."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_HOSTED_BYTES:
        chunk = await request.content.read(MAX_HOSTED_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def download_file(request: web.Request) -> web.Response:
    hosted = request.app[HOSTED_FILES].get(request.match_info["file_id"])
    if hosted is None:
        return web.json_response({"error": "no such file"}, status=404)
    name, data = hosted
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
