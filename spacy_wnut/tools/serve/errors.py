"""Errors answered as JSON `{"error": {"type", "field", "message"}}`, and the request's own exceptions."""

from typing import Any, Dict, Optional

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException


class ServeError(Exception):
    """A request the server refuses: its status, error type, the field at fault and why."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        field: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        id: Any = None,
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.field = status, type, message, field
        self.headers, self.id = headers, id

    def response(self) -> JSONResponse:
        body: Dict[str, Any] = {"error": {"type": self.type, "field": self.field, "message": self.message}}
        if self.id is not None:
            body["id"] = self.id
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class ClientGone(Exception):
    """The client closed its connection before its request was answered."""


class BodyTooLarge(Exception):
    """The request body streamed past the limit."""


def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return ServeError(exc.status_code, "http", str(exc.detail), headers=getattr(exc, "headers", None)).response()
