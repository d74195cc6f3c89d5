"""The pages the API serves from ``web/``: the enrolment page (``/enrol``) where a trader
registers a passkey through the link `floor traders add` printed.

No build step: static files, an ES module from this origin; the token in the page's fragment
never reaches a server (browsers do not send fragments) and the page sends no Referer. Every
response carries ``frame-ancestors 'none'`` (:mod:`api.security_headers`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

router = APIRouter(include_in_schema=False)


def _file(name: str, media_type: str) -> FileResponse:
    return FileResponse(
        WEB_DIR / name,
        media_type=media_type,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@router.get("/enrol")
async def enrol_page() -> FileResponse:
    return _file("enrol.html", "text/html; charset=utf-8")


@router.get("/enrol.js")
async def enrol_script() -> FileResponse:
    return _file("enrol.js", "text/javascript; charset=utf-8")
