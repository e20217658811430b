"""Request and response models of the HTTP API (pydantic; they also make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _valid_unicode(value: str) -> str:
    # JSON can carry lone surrogates (\ud800) that no UTF-8 response could echo back.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"not valid Unicode: lone surrogate at character {error.start}") from None
    return value


class TagRequest(BaseModel):
    """Exactly one of ``text``, ``texts`` or ``tokens`` (pre-tokenized sentences)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["text"]}, {"required": ["texts"]}, {"required": ["tokens"]}]},
    )

    text: str | None = None
    texts: list[str] | None = None
    tokens: list[list[str]] | None = None
    return_tokens: bool = Field(False, description="Include per-token tags and scores in the response.")

    @field_validator("text")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else _valid_unicode(value)

    @field_validator("texts", "tokens")
    @classmethod
    def _many(cls, value: list[Any] | None) -> list[Any] | None:
        for item in value or []:
            for text in [item] if isinstance(item, str) else item:
                _valid_unicode(text)
        return value

    @model_validator(mode="after")
    def _one_input(self) -> TagRequest:
        given = [name for name in ("text", "texts", "tokens") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of 'text', 'texts' or 'tokens' (got {', '.join(given) or 'none'})")
        return self

    def inputs(self) -> list[str] | list[list[str]]:
        if self.text is not None:
            return [self.text]
        return list(self.texts if self.texts is not None else self.tokens or [])


class Entity(BaseModel):
    """One entity span, in the Hugging Face ``aggregation_strategy="simple"`` shape."""

    entity_group: str
    score: float
    word: str
    start: int
    end: int


class Token(BaseModel):
    text: str
    start: int
    end: int
    tag: str
    score: float


class TagResult(BaseModel):
    """One input's result; offsets index the input text (or the tokens joined by single spaces)."""

    entities: list[Entity]
    tokens: list[Token] | None = None


class TagResponse(BaseModel):
    model: str
    version: int
    results: list[TagResult]


class ModelInfo(BaseModel):
    name: str
    ref: str
    version: int
    kind: str
    aliases: list[str]
    labels: list[str]
    metrics: dict[str, Any]


class ModelList(BaseModel):
    models: list[ModelInfo]


class Problem(BaseModel):
    detail: str


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """A 422: which field of the request is wrong and why (the offending value is not echoed)."""

    detail: list[FieldProblem]
