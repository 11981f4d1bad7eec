"""How a canonical pydantic model looks to a mapping: field paths, nested models, lists, value checks."""

from __future__ import annotations

import enum
import types
import typing
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo


class TargetPathError(ValueError):
    """A mapping names a field path the target model does not have."""


def _without_none(annotation: Any) -> Any:
    """X for `X | None`; the annotation itself otherwise."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def nested_model(info: FieldInfo) -> type[BaseModel] | None:
    """The model a field holds (`GeoPoint | None` -> GeoPoint), or None for scalars and lists."""
    annotation = _without_none(info.annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def item_model(info: FieldInfo) -> type[BaseModel] | None:
    """The model of the items of a list field (`tuple[Document, ...]` -> Document), or None."""
    annotation = _without_none(info.annotation)
    if typing.get_origin(annotation) not in (list, tuple):
        return None
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def is_scalar(info: FieldInfo) -> bool:
    """Whether a field holds text, a number or an enum value (not an object or a list)."""
    annotation = _without_none(info.annotation)
    return isinstance(annotation, type) and issubclass(annotation, str | int | float | enum.Enum)


def always_present(info: FieldInfo) -> bool:
    """Whether a field is in every dumped document: required, or defaulted to something other than None."""
    return info.is_required() or info.get_default(call_default_factory=True) is not None


def resolve(model: type[BaseModel], path: tuple[str, ...]) -> FieldInfo:
    """The field a dotted path names, walking through nested models."""
    current: type[BaseModel] = model
    for depth, name in enumerate(path):
        fields = current.model_fields
        if name not in fields:
            where = ".".join(path[:depth]) or model.__name__
            known = ", ".join(fields)
            raise TargetPathError(f"{current.__name__} ({where}) has no field '{name}'; fields: {known}")
        info = fields[name]
        if depth == len(path) - 1:
            return info
        inner = nested_model(info)
        if inner is None:
            kind = "a list; map its items with 'each'" if item_model(info) else "not an object"
            raise TargetPathError(f"'{'.'.join(path[: depth + 1])}' is {kind}")
        current = inner
    raise TargetPathError("empty target field path")


@cache
def _adapter(info: FieldInfo) -> TypeAdapter[Any]:
    # The field's type with its constraints (gt, pattern, ...), checked without building a whole model.
    annotated: Any = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
    return TypeAdapter(annotated)


def check_value(info: FieldInfo, value: Any) -> str | None:
    """Why value is not acceptable for the field, or None when it is."""
    try:
        _adapter(info).validate_python(value)
    except ValidationError as exc:
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" if err["loc"] else err["msg"]
            for err in exc.errors()
        )
    return None


def required_fields(model: type[BaseModel]) -> list[str]:
    """Names of the fields a model cannot do without."""
    return [name for name, info in model.model_fields.items() if info.is_required()]
