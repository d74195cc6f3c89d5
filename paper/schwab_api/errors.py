"""Schwab's error bodies, as the emulator answers bad requests.

The Trader API (``/trader/v1``) answers every 4xx and 5xx with a ``ServiceError``,
``{"message": ..., "errors": [...]}``; market data (``/marketdata/v1``) uses a list of error
objects instead; the token endpoint answers as OAuth does, ``{"error", "error_description"}``.
Schwab publishes no message texts for most refusals: the texts here are the emulator's own,
written to say what to change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fastapi.responses import JSONResponse

CORREL_HEADER = "Schwab-Client-CorrelId"


class ServiceError(Exception):
    """A refusal on ``/trader/v1``; the app turns it into the ``ServiceError`` body."""

    def __init__(
        self, status: int, message: str, errors: Sequence[str] = (), headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {message}: {'; '.join(errors)}")
        self.status = status
        self.message = message
        self.errors = list(errors)
        self.headers = headers or {}


class MarketDataError(Exception):
    """A refusal on ``/marketdata/v1``."""

    def __init__(self, status: int, title: str, detail: str, parameter: str | None = None) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.parameter = parameter


def correl_id() -> str:
    return str(uuid.uuid4())


def service_error_response(error: ServiceError) -> JSONResponse:
    return JSONResponse(
        {"message": error.message, "errors": error.errors},
        status_code=error.status,
        headers={CORREL_HEADER: correl_id(), **error.headers},
    )


def market_data_error_response(error: MarketDataError) -> JSONResponse:
    body: dict[str, object] = {
        "id": correl_id(),
        "status": str(error.status),
        "title": error.title,
        "detail": error.detail,
    }
    if error.parameter:
        body["source"] = {"parameter": error.parameter}
    return JSONResponse({"errors": [body]}, status_code=error.status, headers={CORREL_HEADER: correl_id()})


def oauth_error_response(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={CORREL_HEADER: correl_id()},
    )


def bad_request(message: str, *errors: str) -> ServiceError:
    return ServiceError(400, message, errors)


def not_found(message: str, *errors: str) -> ServiceError:
    return ServiceError(404, message, errors)


NOT_AUTHORIZED = "Client not authorized"
