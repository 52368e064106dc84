"""Typed, strict views of `params.yaml` sections: one dataclass per section.

Unknown keys, missing keys, wrong types and out-of-range values raise `ParamsError` naming the
key's full dotted path (`prepare.datasets.esc50.meta`), so a typo fails at stage entry.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from blat_core import yaml_input

T = TypeVar("T")


class ParamsError(ValueError):
    """A params value is missing, unknown, of the wrong type or out of range."""


def bounded(
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    choices: tuple | None = None,
    default: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with a range or a set of allowed values, checked on load."""
    meta = {"ge": ge, "gt": gt, "le": le, "choices": choices}
    return dataclasses.field(default=default, metadata={k: v for k, v in meta.items() if v is not None})


def load_params_file(path: str | Path) -> dict:
    """Read a params YAML file; a missing file or a non-mapping top level is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file {path} does not exist (run from the project root or pass --params)")
    try:
        data = yaml_input.safe_load(path.read_text(encoding="utf-8"), str(path))
    except (yaml.YAMLError, UnicodeDecodeError, yaml_input.YamlTooLarge) as error:
        raise ParamsError(f"{path}: not a readable YAML file ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return data


def load_section(path: str | Path, section: str, cls: type[T]) -> T:
    """Load one top-level section of a params file into `cls`, strictly."""
    data = load_params_file(path)
    if section not in data:
        raise ParamsError(f"{path}: section '{section}' is missing")
    return from_dict(cls, data[section], section)


def from_dict(cls: type[T], data: Any, prefix: str) -> T:
    """Build dataclass `cls` from a mapping; every error names the dotted key."""
    if not isinstance(data, dict):
        raise ParamsError(f"{prefix}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        names = ", ".join(f"{prefix}.{k}" for k in unknown)
        raise ParamsError(f"unknown params key(s): {names} (valid keys: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, field in fields.items():
        key = f"{prefix}.{name}"
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ParamsError(f"params key {key} is missing")
            continue
        value = _convert(hints[name], data[name], key)
        _check_bounds(field, value, key)
        values[name] = value
    return cls(**values)


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, key)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise ParamsError(f"{key}: expected a list, got {value!r}")
        return [_convert(args[0], item, f"{key}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): _convert(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint_text = " (write floats as 1.0e-4, not 1e-4: YAML 1.1 reads that as a string)"
            raise ParamsError(
                f"{key}: expected a number, got {value!r}" + (hint_text if isinstance(value, str) else "")
            )
        if not math.isfinite(value):
            raise ParamsError(f"{key}: must be a finite number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported params type {hint!r} for {key}")


def _check_bounds(field: dataclasses.Field, value: Any, key: str) -> None:
    meta = field.metadata
    if value is None:
        return
    if "ge" in meta and value < meta["ge"]:
        raise ParamsError(f"{key}: must be >= {meta['ge']}, got {value!r}")
    if "gt" in meta and value <= meta["gt"]:
        raise ParamsError(f"{key}: must be > {meta['gt']}, got {value!r}")
    if "le" in meta and value > meta["le"]:
        raise ParamsError(f"{key}: must be <= {meta['le']}, got {value!r}")
    if "choices" in meta and value not in meta["choices"]:
        raise ParamsError(f"{key}: must be one of {list(meta['choices'])}, got {value!r}")
