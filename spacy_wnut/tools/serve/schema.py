"""The HTTP interface: request and response models (OpenAPI), the body parser and the `X-Request-ID` value."""

import json
import unicodedata
import urllib.parse
from typing import List, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ...data.records import check_unicode
from .errors import ServeError
from .settings import HEADER_SAFE, MAX_ID_CHARS


class EntitiesRequest(BaseModel):
    """The body of `POST /v1/entities`: exactly one of `text` and `texts`, and an optional `id`."""

    model_config = ConfigDict(extra="forbid")
    text: Optional[StrictStr] = Field(None, description="one text to tag")
    texts: Optional[List[StrictStr]] = Field(None, min_length=1, description="texts to tag, in order")
    id: Optional[Union[StrictStr, StrictInt]] = Field(
        None, description="carried into the answer, each row's `source` and the server log (default: a new UUID)"
    )
    min_score: Optional[float] = Field(
        None, ge=0.0, le=1.0, strict=True, description="leave out entities whose probability is below this"
    )

    @field_validator("id")
    @classmethod
    def _printable_and_short(cls, value: Optional[Union[str, int]]) -> Optional[Union[str, int]]:
        text = str(value) if value is not None else ""
        if len(text) > MAX_ID_CHARS:
            raise ValueError(f"the id is {len(text)} characters long; at most {MAX_ID_CHARS}")
        problem = check_unicode(text)
        if problem:
            raise ValueError(f"the id holds a {problem}")
        control = next((c for c in text if unicodedata.category(c) == "Cc"), None)
        if control is not None:
            raise ValueError(f"the id holds the control character {control!r}")
        return value

    @model_validator(mode="after")
    def _one_of_text_and_texts(self) -> "EntitiesRequest":
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' (a string) and 'texts' (a list of strings)")
        return self


class Entity(BaseModel):
    start: int = Field(description="character offset of the first character")
    end: int = Field(description="character offset after the last character")
    label: str
    text: str
    score: Optional[float] = Field(description="the component's mean token probability")


class Row(BaseModel):
    """One tagged text: the record `annotate` writes to JSONL."""

    source: str = Field(description="the request's id")
    line: int = Field(description="the text's position in the request, from 1")
    text: str
    entities: List[Entity]


class EntitiesResponse(BaseModel):
    id: Union[str, int]
    results: List[Row]


class ErrorDetail(BaseModel):
    type: str
    field: Optional[str] = Field(description="the request field at fault, e.g. `texts.2`")
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
    id: Optional[Union[str, int]] = None


def header_id(request_id: Union[str, int]) -> str:
    """`request_id` as an `X-Request-ID` value: visible ASCII as it is, anything else percent-encoded."""
    return urllib.parse.quote(str(request_id), safe=HEADER_SAFE)


def parse_body(raw: bytes) -> EntitiesRequest:
    """The request body as UTF-8 JSON (whatever its Content-Type), validated: 400 for a body that is not
    UTF-8 or does not parse, 422 for wrong fields or types, naming the field (`texts.1`)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        message = f"the body is not UTF-8 ({err.reason} at byte {err.start}); JSON bodies are UTF-8"
        raise ServeError(400, "invalid_json", message, "body") from None
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ServeError(400, "invalid_json", f"the body is not valid JSON: {err}", "body") from None
    except RecursionError:
        raise ServeError(400, "invalid_json", "the body's JSON is nested too deeply", "body") from None
    try:
        return EntitiesRequest.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = first.get("loc", ())
        # The field and its list indices (`texts.1`), without pydantic's union member tags (`id.str`).
        field = ".".join(str(part) for part in loc[:1] + tuple(p for p in loc[1:] if isinstance(p, int))) or "body"
        message = first.get("msg", "invalid").removeprefix("Value error, ")
        if first.get("type") == "extra_forbidden":
            message = "unknown field (the fields are text, texts, id and min_score)"
        elif field == "id" and first.get("type") != "value_error":
            message = "the id must be a string or a whole number"
        raise ServeError(422, "invalid_field", message, field) from None
