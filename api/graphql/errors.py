"""Named errors for what a caller may not do or asked wrongly. A query's expected refusals are
GraphQL errors whose ``extensions.code`` names the reason (mutations answer with result types
instead); anything else is a bug and is logged as one."""

from __future__ import annotations

from graphql import GraphQLError

UNAUTHENTICATED = "auth.unauthenticated"
OPS_ONLY = "auth.ops_only"
BAD_CURSOR = "query.bad_cursor"
BAD_PAGE_SIZE = "query.bad_page_size"
BAD_ARGUMENT = "query.bad_argument"
UNAVAILABLE = "service.unavailable"


class Refused(GraphQLError):
    """An expected refusal: the caller gets the reason and what to do; the log stays quiet."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, extensions={"code": reason})
        self.reason = reason


def unauthenticated() -> Refused:
    return Refused(
        UNAUTHENTICATED,
        "sign in first: a trader with a passkey (the session cookie), a program with "
        "`Authorization: Bearer <token>` from `floor api-tokens new`",
    )


def ops_only(what: str) -> Refused:
    return Refused(OPS_ONLY, f"{what} is for the ops role; ask an operator for an ops token")
