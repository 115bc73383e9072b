"""Typed settings: the field types every settings model uses, and pydantic's errors as one line.

The recipe (:mod:`resmo.config.schema`) and the library's own settings types
(:class:`resmo.losses.resmo.ResMoSettings`) are :class:`Section` models built from these
fields: every field's type and allowed values live on the field (:func:`setting`,
:func:`one_of`), an unknown key or a bad value fails when the model is built, and the
model is frozen (a resolved setting is never changed afterwards).
:func:`describe_error` turns pydantic's error into one line naming the source, the dotted
key, the value and what is allowed, e.g.::

    my_recipe.yaml: unknown key 'train.epoch' (did you mean train.epochs?); valid keys in 'train': ...
    command line: 'train.epochs' expects an integer, got 'abc'
    command line: train.epochs=0 is not valid; allowed values: an integer >= 1

A :class:`Section` built directly (``ResMoSettings(weight=-1)``) raises the same one-line
``ValueError``, its keys under the model's :attr:`Section.key_prefix` (``resmo.weight=-1.0
is not valid; allowed values: a number >= 0``).
"""

from __future__ import annotations

import difflib
import inspect
import math
import types
import typing
from typing import Annotated, Any, ClassVar, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    create_model,
)

from resmo.validation import one_line


def _number(value: Any) -> Any:
    """Numbers as YAML gives them: ints and floats (not booleans); ``1e-6`` (read as a
    string by YAML 1.1) too."""
    if isinstance(value, bool):
        raise ValueError("expects a number")  # noqa: TRY004 (pydantic wants ValueError)
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _text(value: Any) -> Any:
    """Strings; a number given where a string is expected (``out=123``) becomes its text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("expects a finite number")
    return value


Integer = StrictInt
Number = Annotated[float, BeforeValidator(_number)]
FiniteNumber = Annotated[float, BeforeValidator(_number), AfterValidator(_finite)]
Flag = StrictBool
Text = Annotated[str, BeforeValidator(_text)]


def setting(default: Any, allowed: str, **constraints: Any) -> Any:
    """A field with its constraints (``ge``, ``gt``, ``le``, ``lt``) and the text of its
    allowed values, used by the one-line error (``key=value is not valid; allowed values: ...``)."""
    return Field(default, json_schema_extra={"allowed": allowed}, **constraints)


def one_of(names: tuple[str, ...]) -> Any:
    """A string type whose allowed values are ``names``."""
    allowed = ", ".join(sorted(names))

    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"is not valid; allowed values: {allowed}")
        return value

    return Annotated[str, BeforeValidator(_text), AfterValidator(check)]


class Section(BaseModel):
    """A settings model: unknown keys refused, frozen once built. Built directly, a bad
    value raises one ``ValueError`` line (:func:`describe_error`) with keys under
    ``key_prefix``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: The dotted prefix of this model's keys in error messages (``"resmo"``: ``resmo.weight``).
    key_prefix: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise ValueError(one_line(describe_error(error, "", data, root=type(self), prefix=self.key_prefix))) from None

    # Marks this __init__ as pydantic's own (as pydantic-settings does), so that validating a
    # recipe does not call it for nested sections: their errors keep their full location.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]


def describe_error(error: ValidationError, source: str, data: dict[str, Any], *, root: type[BaseModel],
                   prefix: str = "") -> str:
    """The first of pydantic's errors as one line: ``SOURCE: unknown key 'train.epoch' (did you
    mean train.epochs?); valid keys in 'train': ...``, ``SOURCE: train.epochs=0 is not valid;
    allowed values: an integer >= 1`` or ``SOURCE: 'train.epochs' expects an integer, got 'abc'``."""
    first = error.errors()[0]
    location = [part for part in first["loc"] if not isinstance(part, int) or first["type"] != "model_type"]
    model, field, parents = _field_at(root, location)
    lead = f"{source}: " if source else ""
    location = [*prefix.split("."), *location] if prefix else location  # named as the user writes it
    dotted = ".".join(str(part) for part in location)
    value = first.get("input")
    kind = first["type"]
    if kind == "extra_forbidden":
        section = f"'{'.'.join(str(p) for p in location[:-1])}'" if len(location) > 1 else "the top level"
        guess = suggest_key(model, location[-1], value)
        parent = "".join(f"{p}." for p in location[:-1])
        hint = f" (did you mean {parent}{guess}?)" if guess else ""
        return f"{lead}unknown key '{dotted}'{hint}; valid keys in {section}: {', '.join(sorted(model.model_fields))}"
    if kind in ("model_type", "model_attributes_type"):
        return f"{lead}'{dotted}' is a section and expects a mapping, got {value!r}"
    if kind == "value_error":  # a field validator's own message (precision, devices)
        message = str(first["ctx"]["error"])
        if message.startswith("is not valid"):
            return f"{lead}{dotted}={value!r} {message}"
        return f"{lead}{message}" if dotted in message else f"{lead}'{dotted}' {message}, got {value!r}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than") and field is not None:
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        allowed = extra.get("allowed") or first["msg"]
        if isinstance(value, int) and not isinstance(value, bool) and "integer" not in allowed:
            value = float(value)  # a number field shows the number it was read as
        if parents and isinstance(parents[-1], int):  # an item of a tuple: name its index
            dotted = f"{'.'.join(str(p) for p in location[:-1])}[{parents[-1]}]"
        return f"{lead}{dotted}={value!r} is not valid; allowed values: {allowed}"
    if kind == "literal_error":
        return f"{lead}{dotted}={value!r} is not valid; allowed values: {first['ctx']['expected']}"
    return f"{lead}'{_without_indices(location)}' expects {_describe(field)}, got {value!r}"


def _field_at(root: type[BaseModel], location: list[Any]) -> tuple[type[BaseModel], Any, list[Any]]:
    """The model holding the last named key of ``location``, that key's field (None when it is
    not a field) and the parts after that key (tuple indices)."""
    model: type[BaseModel] = root
    field = None
    for index, part in enumerate(location):
        if not isinstance(part, str) or part not in model.model_fields:
            return model, field if index and not isinstance(part, str) else None, list(location[index:])
        field = model.model_fields[part]
        annotation = field.annotation
        if index + 1 < len(location) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return model, field, []


def _without_indices(location: list[Any]) -> str:
    return ".".join(str(part) for part in location if isinstance(part, str))


def suggest_key(model: type[BaseModel], key: Any, value: Any) -> str | None:
    """The dotted key, below ``model``, that the unknown ``key`` (set to ``value``) most
    likely means: ``trian`` with ``{epoch: 2}`` gives ``train.epochs``.

    Each level is the closest field name (:func:`difflib.get_close_matches`); inside a
    section, a ``value`` of one key is followed (as a ``key.sub=value`` override gives it)
    as far as its names can be matched; names inside free-form option maps are kept as
    given. ``None`` when no field is close to ``key``."""
    names = list(model.model_fields)
    matches = [key] if key in names else difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
    if not matches:
        return None
    match = matches[0]
    annotation = model.model_fields[match].annotation
    if not isinstance(value, dict) or len(value) != 1:
        return match
    ((sub, sub_value),) = value.items()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        below = suggest_key(annotation, sub, sub_value)
        return match if below is None else f"{match}.{below}"
    if typing.get_origin(annotation) is dict:  # free-form options (data.views, method_options.<name>): kept as given
        below = str(sub)
        while isinstance(sub_value, dict) and len(sub_value) == 1:
            ((sub, sub_value),) = sub_value.items()
            below += f".{sub}"
        return f"{match}.{below}"
    return match


def _describe(field: Any) -> str:
    """What a field takes, in words: ``an integer``, ``a number or null``, ``a list of 2 values``."""
    return _describe_annotation(field.annotation) if field is not None else "a valid value"


def _describe_annotation(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe_annotation(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _describe_annotation(typing.get_args(annotation)[0])
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
    if annotation in names:
        return names[annotation]
    if origin is dict:
        return "a mapping"
    if origin is tuple:
        return f"a list of {len(typing.get_args(annotation))} values"
    return str(annotation)


_SETTING_TYPES: dict[Any, Any] = {float: Number, int: Integer, bool: Flag, str: Text}


def _setting_type(annotation: Any) -> Any:
    """``annotation`` with ``float`` / ``int`` / ``bool`` / ``str`` as resmo's setting types
    (unions such as ``float | None`` kept as unions)."""
    if annotation in _SETTING_TYPES:
        return _SETTING_TYPES[annotation]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = tuple(_setting_type(member) for member in typing.get_args(annotation))
        return Union[members]  # noqa: UP007 (built from a tuple)
    return annotation


def _keyword_options(function: Any, skip: tuple[str, ...]) -> dict[str, tuple[Any, Any]]:
    hints = typing.get_type_hints(function)
    keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    fields = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind not in keyword or name in skip:
            continue
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (_setting_type(hints.get(name, Any)), default)
    return fields


def signature_model(key_prefix: str, *functions: Any, skip: tuple[str, ...] = ()) -> type[Section]:
    """A :class:`Section` whose fields are the keyword parameters of ``functions`` (later ones
    win), each with its annotation (``float`` / ``int`` / ``bool`` / ``str`` as the setting
    types above) and default, except ``skip`` and ``self``; its keys are named under ``key_prefix``
    in errors. For options given as a free mapping (``method_options.<name>``,
    ``backbone_options.<name>``) and passed to a factory."""
    fields: dict[str, tuple[Any, Any]] = {}
    for function in functions:
        fields.update(_keyword_options(function, (*skip, "self")))
    base = type(f"{key_prefix}.base", (Section,), {"__annotations__": {"key_prefix": ClassVar[str]},
                                                   "key_prefix": key_prefix})
    return create_model(key_prefix.replace(".", "_"), __base__=base, **fields)
