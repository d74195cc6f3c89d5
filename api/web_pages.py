"""The pages the API serves from ``web/``: the Trade Station HUD (``/``, its modules under
``/hud/``, the graphql-ws client under ``/vendor/graphql-ws/``) and the enrolment page
(``/enrol``) where a trader registers a passkey through the link `floor traders add` printed.

No build step: static files and ES modules from this origin only. graphql-ws is an npm package
`make install` puts in ``web/node_modules`` (never committed); its browser build imports without
a bundler. The HUD's pages carry a strict Content-Security-Policy (scripts, styles and
connections from this origin only) that keeps ``frame-ancestors 'none'``
(:mod:`api.security_headers`); the enrolment token in the fragment never reaches a server
(browsers do not send fragments) and no page sends a Referer.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, PlainTextResponse

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
HUD_DIR = WEB_DIR / "hud"
VENDOR_DIRS = {"graphql-ws": WEB_DIR / "node_modules" / "graphql-ws" / "dist"}

HUD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; object-src 'none'; frame-ancestors 'none'"
)
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# One file name, no folders: nothing outside the served folder can be named.
HUD_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\.(js|css|svg)")
VENDOR_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\.js")

router = APIRouter(include_in_schema=False)


def _file(path: Path, *, csp: str | None = None) -> FileResponse:
    headers = {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    if csp:
        headers["Content-Security-Policy"] = csp
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=headers)


@router.get("/")
async def hud_page() -> FileResponse:
    return _file(HUD_DIR / "index.html", csp=HUD_CSP)


@router.get("/hud/{name}")
async def hud_file(name: str) -> FileResponse:
    path = HUD_DIR / name
    if not HUD_FILE.fullmatch(name) or not path.is_file():
        raise HTTPException(404, f"no HUD file {name!r}")
    return _file(path, csp=HUD_CSP)


@router.get("/vendor/{package}/{name}", response_model=None)
async def vendor_file(package: str, name: str) -> FileResponse | PlainTextResponse:
    folder = VENDOR_DIRS.get(package)
    if folder is None or not VENDOR_FILE.fullmatch(name):
        raise HTTPException(404, f"no vendored file {package}/{name}")
    if not folder.is_dir():
        return PlainTextResponse(
            f"{package} is not installed: run `make install` (it runs npm install in web/)", status_code=503
        )
    path = folder / name
    if not path.is_file():
        raise HTTPException(404, f"no vendored file {package}/{name}")
    return _file(path, csp=HUD_CSP)


@router.get("/enrol")
async def enrol_page() -> FileResponse:
    return _file(WEB_DIR / "enrol.html")


@router.get("/enrol.js")
async def enrol_script() -> FileResponse:
    return _file(WEB_DIR / "enrol.js")
