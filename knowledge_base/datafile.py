"""Reading the YAML data files of the knowledge base, with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)

#: The C loader when libyaml is there (about five times faster); the same safe subset.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DataFileError(ValueError):
    pass


def read_yaml(path: Path, *, error: type[ValueError] = DataFileError) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc


def read_yaml_list(path: Path, what: str, *, error: type[ValueError] = DataFileError) -> list[Any]:
    """A file holding a list (of entries, templates...); empty file = empty list."""
    data = read_yaml(path, error=error) or []
    if not isinstance(data, list):
        raise error(f"{path}: expected a list of {what}")
    return data


def load_model(
    path: Path, model: type[ModelT], *, error: type[ValueError] = DataFileError
) -> ModelT:
    """A file holding one mapping, validated as ``model``; empty file = all defaults."""
    try:
        return model.model_validate(read_yaml(path, error=error) or {})
    except ValidationError as exc:
        raise error(f"{path}: {exc}") from exc
