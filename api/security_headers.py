"""``Content-Security-Policy: frame-ancestors 'none'`` on every HTTP response: no page of another
site may frame the API's pages (GraphiQL now, the HUD next) and trick a trader into clicking
through a ceremony it cannot see (clickjacking). Plain ASGI, so streaming responses and
WebSockets pass untouched."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (b"content-security-policy", b"frame-ancestors 'none'")


def _keeps_frames_out(header: tuple[bytes, bytes]) -> bool:
    """A page's own, stricter policy (the HUD's) stands when it already says frame-ancestors 'none'."""
    return header[0].lower() == CSP[0] and CSP[1] in header[1]


class FrameAncestorsNone:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(_keeps_frames_out(h) for h in headers):
                    headers = [h for h in headers if h[0].lower() != CSP[0]]
                    message = {**message, "headers": [*headers, CSP]}
            await send(message)

        await self.app(scope, receive, with_header)
