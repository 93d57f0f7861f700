"""How a body model's field is documented, without the web framework: the registry's command
table references the request models, and the application must not import FastAPI."""

from __future__ import annotations

from typing import Any

from pydantic import Field


def about(description: str, example: object, **field: Any) -> Any:
    """A model field's description (its Chinese term first) and one valid example; ``field``
    as for pydantic's ``Field`` (a default, say)."""
    return Field(description=description, examples=[example], **field)
