"""Errors that carry their HTTP status (design decision 9), and the one handler that
turns every error into JSON.

A client's mistake is a 4xx that says what was wrong and where; a problem on our
side that will pass (database down or slow, a VW daemon restarting) is a 503 with
``Retry-After``. Anything else is a bug: it is logged with its traceback and the
client gets a plain 500 with the request id, never the traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify
from werkzeug.exceptions import HTTPException

from ml.errors import DataSourceError, DataSourceUnavailable, QueryTimeout, RtmlError

log = logging.getLogger(__name__)


class ServingError(RtmlError):
    """An error with an HTTP status and a stable machine-readable ``code``."""

    status = 500
    code = "internal"
    # What the client reads instead of ``message`` when the message names internals
    # (hosts, ports); None: the message itself.
    public_message: str | None = None

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field  # the JSON path of the offending request field, if any

    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(ServingError):
    status, code = 400, "bad_request"


class Unauthorized(ServingError):
    status, code = 401, "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="rtml"'}


class Forbidden(ServingError):
    status, code = 403, "forbidden"


class NotFound(ServingError):
    status, code = 404, "not_found"


class PayloadTooLarge(ServingError):
    status, code = 413, "payload_too_large"


class InvalidInput(ServingError):
    status, code = 422, "invalid_input"


class Unavailable(ServingError):
    """Something we depend on is down or slow; the client may retry after a pause."""

    status, code = 503, "unavailable"
    retry_after_s = 1

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


def error_body(error: ServingError) -> dict[str, Any]:
    message = error.public_message or error.message
    body: dict[str, Any] = {"error": {"code": error.code, "message": message}}
    if error.hint:
        body["error"]["hint"] = error.hint
    if error.field:
        body["error"]["field"] = error.field
    request_id = g.get("request_id")
    if request_id:
        body["request_id"] = request_id
    return body


def error_response(error: ServingError) -> Response:
    response = jsonify(error_body(error))
    response.status_code = error.status
    response.headers.update(error.headers())
    return response


_HTTP_ERRORS: dict[int, type[ServingError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: PayloadTooLarge,
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServingError)
    def _serving(error: ServingError) -> Response:
        if error.status >= 500 and not isinstance(error, Unavailable):
            # A problem on our side (e.g. a misconfigured model): the operator reads the log,
            # the client gets no internals.
            log.error("request %s: %s (%s)", g.get("request_id"), error.message, error.hint)
            return error_response(ServingError("internal error; it has been logged"))
        if error.public_message:
            log.warning("request %s: %s", g.get("request_id"), error.message)
        return error_response(error)

    @app.errorhandler(DataSourceError)
    def _data_source(error: DataSourceError) -> Response:
        # The full message (host, database, user) goes to the log, never to the client.
        request_id = g.get("request_id")
        if isinstance(error, QueryTimeout):
            log.warning("online query timed out on request %s: %s", request_id, error.message)
            message = "the online query took longer than the limit (RTML_QUERY_TIMEOUT_MS)"
        elif isinstance(error, DataSourceUnavailable):
            log.warning("database unavailable on request %s: %s", request_id, error.message)
            message = "the model's database is unavailable"
        else:  # the query itself fails (a missing column, a permission): ours to fix
            log.error("online query failed on request %s: %s", request_id, error.message)
            return error_response(ServingError("the model's online query failed; it is logged"))
        return error_response(Unavailable(message, hint="retry after a pause"))

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 405:
            wrapped: ServingError = ServingError(str(error.description))
            wrapped.status, wrapped.code = 405, "method_not_allowed"
        else:
            kind = _HTTP_ERRORS.get(status, ServingError)
            wrapped = kind(_first_line(error.description or error.name))
            wrapped.status = status
            if kind is ServingError:  # e.g. 415, 431: a code named after the status
                wrapped.code = error.name.lower().replace(" ", "_")
        response = error_response(wrapped)
        if status == 405 and error.get_response().headers.get("Allow"):
            response.headers["Allow"] = error.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _bug(error: Exception) -> Response:
        log.exception("unhandled error on request %s", g.get("request_id"))
        return error_response(ServingError("internal error; it has been logged"))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "error"
