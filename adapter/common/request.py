"""The base of every API family's request bodies: unknown fields ignored
(real clients send vendor fields), every string valid Unicode."""

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from hearth.adapter.common.errors import invalid_request
from hearth.adapter.common.text import lone_surrogate_at

# Real clients send vendor fields we do not know; they are ignored, not refused.
LENIENT = ConfigDict(extra="ignore")


class RequestBody(BaseModel):
    """A request body: unknown fields ignored, every string valid Unicode."""

    model_config = LENIENT

    @model_validator(mode="before")
    @classmethod
    def _text_is_unicode(cls, data: Any) -> Any:
        if where := lone_surrogate_at(data):
            raise invalid_request(
                f"Invalid value for '{where}': the text is not valid Unicode", param=where, code="invalid_value"
            )
        return data
