"""GET/POST /import (an exported descriptor file; shows what would be written) and
POST /import/confirm (writes it, in one transaction, as `csf-registry import` does)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from csf._json import load_json
from csf.console.web import Refusal, checked_form, done, field, in_thread, login_of, render
from csf.registry.cli import MAX_FILE_BYTES
from csf.registry.descriptors import ServiceDescriptor, parse

MAX_DESCRIPTOR_BYTES = MAX_FILE_BYTES  # what csf-registry import reads


async def import_form(request: Request) -> Response:
    login_of(request)
    return render(request, "import.html")


def _parsed(data: bytes) -> list[ServiceDescriptor]:
    try:
        return parse(load_json(data, MAX_DESCRIPTOR_BYTES))
    except ValueError as exc:  # DescriptorError included
        raise Refusal(f"descriptor: {exc}") from None


async def preview(request: Request) -> Response:
    login = login_of(request)
    form = await checked_form(request, login, files=1)
    try:
        upload = form.get("descriptor")
        if not isinstance(upload, UploadFile):
            raise Refusal("descriptor: choose an exported descriptor file")
        data = await upload.read(MAX_DESCRIPTOR_BYTES + 1)
    finally:
        await form.close()
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise Refusal(f"descriptor: more than {MAX_DESCRIPTOR_BYTES} bytes")
    descriptors = await asyncio.to_thread(_parsed, data)  # up to 16 MB: off the loop
    existing = {}
    for code in sorted({d.service for d in descriptors}):
        existing[code] = await in_thread(login, login.admin.descriptors, code)
    planned = [
        {
            "service": d.service,
            "grpc_service": d.grpc_service,
            "version": d.version,
            "methods": [m["name"] for m in d.methods],
            "change": "update" if d.grpc_service in existing[d.service] else "create",
            "status": existing[d.service].get(d.grpc_service, {}).get("status", "registered"),
        }
        for d in descriptors
    ]
    token = login.keep(descriptors)
    return render(request, "import_preview.html", {"planned": planned, "token": token})


async def confirm(request: Request) -> Response:
    login = login_of(request)
    form = await checked_form(request, login)
    descriptors = login.pending.pop(field(form, "token", 64), None)
    if not isinstance(descriptors, list):
        raise Refusal("import: nothing to confirm (already written, or the preview is gone)")
    paths = await in_thread(login, login.admin.import_descriptors, descriptors)
    codes = sorted({d.service for d in descriptors})
    login.flash = f"imported {len(paths)} gRPC services: " + json.dumps(codes)
    return done("/services?q=" + quote(codes[0] if len(codes) == 1 else "", safe=""))
