"""Recipes: the typed schema, YAML loading and overrides."""

from resmo.config.loader import ConfigError, config_to_dict, dump_config, load_config
from resmo.config.schema import PretrainConfig

__all__ = ["ConfigError", "PretrainConfig", "config_to_dict", "dump_config", "load_config"]
