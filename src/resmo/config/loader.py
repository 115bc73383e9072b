"""Reading recipes: YAML files and ``key.sub=value`` overrides into a typed config.

A recipe is a YAML file given by path or a shipped recipe given by name
(``cifar10/mocov3``, see :mod:`resmo.recipes`); a path that exists wins over a name.

The schema (:mod:`resmo.config.schema`, pydantic) checks every key and value; its errors
become :class:`ConfigError` (a ``ValueError``) with one line naming the source (file,
recipe or command line), the dotted key and the offending value, e.g.::

    my_recipe.yaml: unknown key 'train.epoch'; valid keys in 'train': accelerator, ...
    command line: 'train.epochs' expects an integer, got 'abc'
    command line: train.epochs=0 is not valid; allowed values: an integer >= 1

Merging rules: sections and plain option maps (``data.views``) merge key by key; entries of name-keyed option maps
(``method_options.<method>``, ``backbone_options.<backbone>``) given in a file replace the
built-in entry as a whole, while a dotted override sets one option.
"""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from resmo.config.schema import PretrainConfig
from resmo.recipes import find_recipe, read_recipe, recipe_names, suggest_recipe
from resmo.validation import one_line


class ConfigError(ValueError):
    """A recipe or override that cannot be used; the message is one actionable line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, *,
                settings: dict[str, tuple[Any, str]] | None = None) -> PretrainConfig:
    """Defaults, then the recipe ``path`` (a YAML file or a shipped recipe name), then
    ``settings`` (``{dotted key: (value, source)}``: the command's flags, typed values set on
    the fields directly), then ``overrides`` (``key.sub=value``, the value read as YAML)."""
    config = PretrainConfig()
    if path is not None:
        text, source = recipe_source(path)
        config = apply_mapping(config, parse_yaml(text, source), source=source)
    for key, (value, source) in (settings or {}).items():
        config = apply_setting(config, key, value, source=source)
    for override in overrides or []:
        config = apply_override(config, override, source="command line")
    return config


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of the recipe ``path`` (a YAML file or a shipped recipe name)."""
    return parse_yaml(*recipe_source(path))


def recipe_source(path: str | Path) -> tuple[str, str]:
    """``(YAML text, source name for messages)`` of a recipe file or shipped recipe name.

    A file at ``path`` wins; otherwise ``path`` must name a shipped recipe
    (``cifar10/mocov3``, optionally with ``.yaml``), whose source reads ``recipe cifar10/mocov3``.
    """
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"config file '{file}' is a folder; pass a .yaml file")
    if not file.is_file():
        name = find_recipe(str(path))
        if name is None:
            raise ConfigError(_unknown_recipe(str(path)))
        return read_recipe(name), f"recipe {name}"
    try:
        return file.read_text(encoding="utf-8"), str(path)
    except UnicodeDecodeError as error:
        raise ConfigError(f"{file}: not UTF-8 text (byte {error.start}); save the recipe as UTF-8") from None
    except OSError as error:
        raise ConfigError(f"config file '{file}' cannot be read ({error.strerror or error})") from None


def _unknown_recipe(value: str) -> str:
    hint = suggest_recipe(value)
    moved = f"; the shipped recipes are named without a folder, e.g. --config {hint}" if hint else ""
    return (f"config '{value}' is neither a file nor a recipe name{moved}; "
            f"recipes (resmo recipes): {', '.join(recipe_names())}")


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """The top-level mapping of the YAML ``text`` read from ``source`` (``{}`` when empty)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}: invalid YAML{where}: {getattr(error, 'problem', error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    check_acyclic(data, source=source, key="")
    return data


def check_acyclic(value: Any, *, source: str, key: str, _open: tuple[int, ...] = ()) -> None:
    """Raise ``ConfigError`` if ``value`` contains itself (a YAML alias such as ``&a [*a]``):
    such a value cannot be checked, printed or saved."""
    if not isinstance(value, (dict, list)):
        return
    if id(value) in _open:
        raise ConfigError(f"{source}: '{key or 'the top level'}' refers to itself (a YAML alias cycle)")
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for name, item in items:
        check_acyclic(item, source=source, key=f"{key}.{name}" if key else str(name),
                      _open=(*_open, id(value)))


def apply_override(config: PretrainConfig, override: str, *, source: str) -> PretrainConfig:
    """``config`` with one ``dotted.key=value`` applied (value parsed as YAML: ``0.1``,
    ``true``, ``[1, 2]``)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{source}: override {override!r} is not of the form key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    check_acyclic(value, source=source, key=key.strip())
    return apply_setting(config, key.strip(), value, source=source)


def apply_setting(config: PretrainConfig, key: str, value: Any, *, source: str) -> PretrainConfig:
    """``config`` with the field at ``dotted.key`` set to ``value``, validated by the schema."""
    node: Any = value
    for part in reversed(key.split(".")[1:]):
        node = {part: node}
    return apply_mapping(config, {key.split(".")[0]: node}, source=source, replace_entries=False)


def apply_mapping(
    config: PretrainConfig, data: dict[str, Any], *, source: str, replace_entries: bool = True
) -> PretrainConfig:
    """``config`` with ``data`` merged in (see the module docstring), validated by the schema;
    an invalid key or value raises :class:`ConfigError` naming ``source``."""
    merged = config.model_dump()
    _merge(merged, data, PretrainConfig, replace_entries)
    try:
        return PretrainConfig.model_validate(merged)
    except ValidationError as error:
        raise ConfigError(describe_error(error, source, data)) from None


def _merge(current: dict[str, Any], data: dict[str, Any], model: type[BaseModel], replace_entries: bool) -> None:
    """Merge ``data`` into the dumped ``current`` of ``model``: sections and option maps key
    by key, name-keyed option maps by entry (replaced from a file, updated by an override).
    Keys and values are not checked here: the schema does that on the result."""
    for key, value in data.items():
        field = model.model_fields.get(key) if isinstance(key, str) else None
        if field is None or not isinstance(value, dict) or not isinstance(current.get(key), dict):
            current[key] = value
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _merge(current[key], value, annotation, replace_entries)
        elif _is_nested_options(annotation):
            for name, options in value.items():
                if replace_entries or not isinstance(options, dict) or not isinstance(current[key].get(name), dict):
                    current[key][name] = {} if options is None else options
                else:
                    current[key][name] = {**current[key][name], **options}
        else:
            current[key] = {**current[key], **value}


def _is_nested_options(annotation: Any) -> bool:
    args = typing.get_args(annotation)
    return typing.get_origin(annotation) is dict and len(args) == 2 and typing.get_origin(args[1]) is dict


def describe_error(error: ValidationError, source: str, data: dict[str, Any]) -> str:
    """The first of pydantic's errors as one line: ``SOURCE: unknown key 'train.epoch' (did you
    mean train.epochs?); valid keys in 'train': ...``, ``SOURCE: train.epochs=0 is not valid;
    allowed values: an integer >= 1`` or ``SOURCE: 'train.epochs' expects an integer, got 'abc'``."""
    first = error.errors()[0]
    location = [part for part in first["loc"] if not isinstance(part, int) or first["type"] != "model_type"]
    model, field, parents = _field_at(location)
    dotted = ".".join(str(part) for part in location)
    value = first.get("input")
    kind = first["type"]
    if kind == "extra_forbidden":
        section = f"'{'.'.join(str(p) for p in location[:-1])}'" if len(location) > 1 else "the top level"
        guess = suggest_key(model, location[-1], value)
        prefix = "".join(f"{p}." for p in location[:-1])
        hint = f" (did you mean {prefix}{guess}?)" if guess else ""
        return f"{source}: unknown key '{dotted}'{hint}; valid keys in {section}: {', '.join(sorted(model.model_fields))}"
    if kind in ("model_type", "model_attributes_type"):
        return f"{source}: '{dotted}' is a section and expects a mapping, got {value!r}"
    if kind == "value_error":  # a field validator's own message (precision, devices)
        message = str(first["ctx"]["error"])
        if message.startswith("is not valid"):
            return f"{source}: {dotted}={value!r} {message}"
        return f"{source}: {message}" if dotted in message else f"{source}: '{dotted}' {message}, got {value!r}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than") and field is not None:
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        allowed = extra.get("allowed") or first["msg"]
        if isinstance(value, int) and not isinstance(value, bool) and "integer" not in allowed:
            value = float(value)  # a number field shows the number it was read as
        if parents and isinstance(parents[-1], int):  # an item of a tuple: name its index
            dotted = f"{'.'.join(str(p) for p in location[:-1])}[{parents[-1]}]"
        return f"{source}: {dotted}={value!r} is not valid; allowed values: {allowed}"
    if kind == "literal_error":
        return f"{source}: {dotted}={value!r} is not valid; allowed values: {first['ctx']['expected']}"
    return f"{source}: '{_without_indices(location)}' expects {_describe(field)}, got {value!r}"


def _field_at(location: list[Any]) -> tuple[type[BaseModel], Any, list[Any]]:
    """The model holding the last named key of ``location``, that key's field (None when it is
    not a field) and the parts after that key (tuple indices)."""
    model: type[BaseModel] = PretrainConfig
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


def config_to_dict(config: PretrainConfig) -> dict[str, Any]:
    """Plain, YAML-safe dict of ``config`` (tuples become lists)."""
    return _plain(config.model_dump())


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dump_config(config: PretrainConfig) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def dump_chosen_config(config: PretrainConfig) -> str:
    """:func:`dump_config` with ``method_options`` and ``backbone_options`` cut to the chosen
    method's and backbone's entries: what ``resmo pretrain`` prints at the start (the run's
    ``config.yaml`` keeps every entry)."""
    values = config_to_dict(config)
    for section, chosen in (("method_options", config.method), ("backbone_options", config.backbone)):
        values[section] = {name: options for name, options in values[section].items() if name == chosen}
    return yaml.safe_dump(values, sort_keys=False)
