"""Reading recipes: YAML files and ``key.sub=value`` overrides into a typed config.

A recipe is a YAML file given by path or a shipped recipe given by name
(``cifar10/mocov3``, see :mod:`resmo.recipes`); a path that exists wins over a name.

Errors are :class:`ConfigError` (a ``ValueError``) with one line naming the source (file,
recipe or command line), the dotted key and the offending value, e.g.::

    my_recipe.yaml: unknown key 'train.epoch'; valid keys in 'train': accelerator, ...
    command line: 'train.epochs' expects an integer, got 'abc'

Merging rules: sections and plain option maps (``data.views``) merge key by key; entries of name-keyed option maps
(``method_options.<method>``, ``backbone_options.<backbone>``) given in a file replace the
built-in entry as a whole, while a dotted override sets one option.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from resmo.config.schema import PretrainConfig
from resmo.recipes import find_recipe, read_recipe, recipe_names, suggest_recipe
from resmo.validation import one_line


class ConfigError(ValueError):
    """A recipe or override that cannot be used; the message is one actionable line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> PretrainConfig:
    """Defaults, then the recipe ``path`` (a YAML file or a shipped recipe name), then
    ``overrides`` (``key.sub=value``)."""
    config = PretrainConfig()
    if path is not None:
        text, source = recipe_source(path)
        apply_mapping(config, parse_yaml(text, source), source=source)
    for override in overrides or []:
        apply_override(config, override, source="command line")
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


def apply_override(config: PretrainConfig, override: str, *, source: str) -> None:
    """Apply one ``dotted.key=value`` (value parsed as YAML: ``0.1``, ``true``, ``[1, 2]``)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{source}: override {override!r} is not of the form key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    check_acyclic(value, source=source, key=key.strip())
    node: Any = value
    for part in reversed(key.strip().split(".")[1:]):
        node = {part: node}
    apply_mapping(config, {key.strip().split(".")[0]: node}, source=source, replace_entries=False)


def apply_mapping(
    target: Any, data: dict[str, Any], *, source: str, prefix: str = "", replace_entries: bool = True
) -> None:
    """Merge ``data`` into the dataclass ``target`` with type checks."""
    fields = {f.name: f for f in dataclasses.fields(target)}
    hints = typing.get_type_hints(type(target))
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            section = f"'{prefix[:-1]}'" if prefix else "the top level"
            guess = suggest_key(target, key, value)
            hint = f" (did you mean {prefix}{guess}?)" if guess else ""
            raise ConfigError(
                f"{source}: unknown key '{dotted}'{hint}; valid keys in {section}: {', '.join(sorted(fields))}"
            )
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{dotted}' is a section and expects a mapping, got {value!r}")
            apply_mapping(current, value, source=source, prefix=f"{dotted}.", replace_entries=replace_entries)
        elif isinstance(current, dict) and _is_nested_options(hints[key]):
            _merge_options(current, value, source, dotted, replace_entries)
        elif isinstance(current, dict) and isinstance(value, dict):
            current.update(value)
        else:
            setattr(target, key, coerce(value, hints[key], source=source, key=dotted))


def suggest_key(target: Any, key: Any, value: Any) -> str | None:
    """The dotted key, below the dataclass ``target``, that the unknown ``key`` (set to
    ``value``) most likely means: ``trian`` with ``{epoch: 2}`` gives ``train.epochs``.

    Each level is the closest field name (:func:`difflib.get_close_matches`); inside a
    section, a ``value`` of one key is followed (as a ``key.sub=value`` override gives it)
    as far as its names can be matched; names inside free-form option maps are kept as
    given. ``None`` when no field is close to ``key``."""
    names = [f.name for f in dataclasses.fields(target)]
    matches = [key] if key in names else difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
    if not matches:
        return None
    match = matches[0]
    current = getattr(target, match)
    if not isinstance(value, dict) or len(value) != 1:
        return match
    ((sub, sub_value),) = value.items()
    if dataclasses.is_dataclass(current):
        below = suggest_key(current, sub, sub_value)
        return match if below is None else f"{match}.{below}"
    if isinstance(current, dict):  # free-form options (data.views, method_options.<name>): kept as given
        below = str(sub)
        while isinstance(sub_value, dict) and len(sub_value) == 1:
            ((sub, sub_value),) = sub_value.items()
            below += f".{sub}"
        return f"{match}.{below}"
    return match


def _is_nested_options(annotation: Any) -> bool:
    args = typing.get_args(annotation)
    return typing.get_origin(annotation) is dict and len(args) == 2 and typing.get_origin(args[1]) is dict


def _merge_options(current: dict, value: Any, source: str, dotted: str, replace_entries: bool) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{dotted}' expects a mapping of name: options, got {value!r}")
    for name, options in value.items():
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise ConfigError(f"{source}: '{dotted}.{name}' expects a mapping of options, got {options!r}")
        if replace_entries:
            current[name] = dict(options)
        else:
            current.setdefault(name, {}).update(options)


def coerce(value: Any, annotation: Any, *, source: str, key: str) -> Any:
    """Check ``value`` against ``annotation`` (int, float, bool, str, unions, dict, tuple)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return coerce(value, option, source=source, key=key)
            except ConfigError:
                continue
        raise ConfigError(f"{source}: '{key}' expects {_describe(annotation)}, got {value!r}")
    if annotation is type(None):
        if value is None:
            return None
    elif annotation is Any:
        return value
    elif annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-6" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif origin is dict:
        if isinstance(value, dict):
            return dict(value)
    elif origin is tuple:
        args = typing.get_args(annotation)
        if isinstance(value, (list, tuple)) and len(value) == len(args):
            return tuple(coerce(v, a, source=source, key=key) for v, a in zip(value, args, strict=True))
    raise ConfigError(f"{source}: '{key}' expects {_describe(annotation)}, got {value!r}")


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation))
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
             type(None): "null"}
    if annotation in names:
        return names[annotation]
    if origin is dict:
        return "a mapping"
    if origin is tuple:
        return f"a list of {len(typing.get_args(annotation))} values"
    return str(annotation)


def config_to_dict(config: PretrainConfig) -> dict[str, Any]:
    """Plain, YAML-safe dict of ``config`` (tuples become lists)."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dump_config(config: PretrainConfig) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)
