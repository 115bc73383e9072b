"""Reading recipes: YAML files and ``key.sub=value`` overrides into a typed config.

A recipe is a YAML file given by path or a shipped recipe given by name
(``cifar10/mocov3``, see :mod:`resmo.recipes`); a path that exists wins over a name.

The schema (:mod:`resmo.config.schema`, pydantic) checks every key and value; its errors
become :class:`ConfigError` (a ``ValueError``) with one line naming the source (file,
recipe or command line), the dotted key and the offending value
(:func:`resmo.settings.describe_error`), e.g.::

    my_recipe.yaml: unknown key 'train.epoch'; valid keys in 'train': accelerator, ...
    command line: 'train.epochs' expects an integer, got 'abc'
    command line: train.epochs=0 is not valid; allowed values: an integer >= 1

Merging rules: sections and plain option maps (``data.views``) merge key by key; entries of name-keyed option maps
(``method_options.<method>``, ``backbone_options.<backbone>``) given in a file replace the
built-in entry as a whole, while a dotted override sets one option.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from resmo.config.schema import PretrainConfig
from resmo.losses.default_weight import default_weight
from resmo.recipes import find_recipe, read_recipe, recipe_names, suggest_recipe
from resmo.settings import describe_error
from resmo.validation import one_line


class ConfigError(ValueError):
    """A recipe or override that cannot be used; the message is one actionable line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, *,
                settings: dict[str, tuple[Any, str]] | None = None) -> PretrainConfig:
    """Defaults, then the recipe ``path`` (a YAML file or a shipped recipe name), then
    ``settings`` (``{dotted key: (value, source)}``: the command's flags, typed values set on
    the fields directly), then ``overrides`` (``key.sub=value``, the value read as YAML). When
    none of them sets ``resmo.weight``, the chosen method's default λ on the chosen data
    (:func:`resmo.losses.default_weight.default_weight`: the quickstart's textures keep 1)."""
    config = PretrainConfig()
    given: list[tuple[str, Any]] = []  # (dotted key, value) of every source, for the default λ
    if path is not None:
        text, source = recipe_source(path)
        mapping = parse_yaml(text, source)
        config = apply_mapping(config, mapping, source=source)
        given.append(("resmo", mapping.get("resmo")))
    for key, (value, source) in (settings or {}).items():
        config = apply_setting(config, key, value, source=source)
        given.append((key, value))
    for override in overrides or []:
        key, value = parse_override(override, source="command line")
        config = apply_setting(config, key, value, source="command line")
        given.append((key, value))
    if not any(sets_resmo_weight(key, value) for key, value in given):
        config = apply_setting(config, "resmo.weight", default_weight(config.method, config.data.name), source="method default")
    return config


def sets_resmo_weight(key: str, value: Any) -> bool:
    """Whether setting ``key`` (dotted) to ``value`` sets ``resmo.weight``."""
    return key == "resmo.weight" or (key == "resmo" and isinstance(value, dict) and "weight" in value)


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


def parse_override(override: str, *, source: str) -> tuple[str, Any]:
    """``(dotted key, value)`` of one ``dotted.key=value`` override, the value read as YAML
    (``0.1``, ``true``, ``[1, 2]``; text YAML cannot read stays text)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{source}: override {override!r} is not of the form key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    check_acyclic(value, source=source, key=key.strip())
    return key.strip(), value


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
        raise ConfigError(describe_error(error, source, data, root=PretrainConfig)) from None


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
