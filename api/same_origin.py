"""Whether a cookie-authenticated request was made by the floor's own page.

The session cookie is SameSite=Strict, but every ``localhost:*`` origin is the same *site*, so a
page served by any other local port would send it. A browser names the page that made a request
in ``Origin`` (every POST) or, failing that, ``Sec-Fetch-Site``; a program sends neither and
authenticates with a bearer token anyway. Used by REST Execute (:mod:`api.orders`) and by
GraphQL over HTTP (:mod:`api.graphql.context`).
"""

from __future__ import annotations

from collections.abc import Mapping

CROSS_SITE = "desk.cross_site"


def cross_site(headers: Mapping[str, str], origin: str, what: str) -> str | None:
    """Why a page other than ``origin``'s may not ``what`` (None: the request is ``origin``'s own,
    or not a browser's)."""
    sender = headers.get("origin")
    if sender is not None:
        return None if sender == origin else f"a page at {sender} may not {what}; only {origin} may"
    site = headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return f"a {site} request may not {what}; only {origin}'s pages may"
    return None
