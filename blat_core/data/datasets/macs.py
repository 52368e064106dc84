"""MACS (Martín-Morató & Mesaros 2021): TAU urban scenes with captions and tags from several
annotators; a stage-2 pre-training source (training only).

Metadata: MACS.yaml.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from blat_core import yaml_input
from blat_core.data.datasets import Recipe
from blat_core.data.datasets.common import MetadataError, Problem, ReadResult, SourceRow, read_text, require


def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
    path = require(meta / "MACS.yaml", "point prepare.datasets.macs.meta at the folder holding MACS.yaml")
    result = ReadResult()
    try:
        document = yaml_input.safe_load(read_text(path), str(path)) or {}
    except yaml.YAMLError as error:
        raise MetadataError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    except yaml_input.YamlTooLarge as error:
        raise MetadataError(str(error)) from None
    if not isinstance(document, dict):
        raise MetadataError(f"{path}: expected a mapping with a `files` list at the top level")
    files = document.get("files") or []
    if not isinstance(files, list):
        raise MetadataError(f"{path}: `files` must be a list of entries (filename, annotations)")
    for index, entry in enumerate(files):
        result.rows_read += 1
        ref = f"MACS.yaml:files[{index}]"
        try:
            name = entry["filename"]
            annotations = entry["annotations"]
            texts = [a["sentence"].strip() for a in annotations if a.get("sentence")]
            tags = sorted({t for a in annotations for t in (a.get("tags") or [])})
        except (KeyError, TypeError, AttributeError) as error:
            result.problems.append(Problem(ref, str(entry)[:40], "malformed_row", f"missing field {error}"))
            continue
        result.rows.append(SourceRow(name, "train", pattern.format(filename=name), ref, captions=texts, labels=tags))
    return result


RECIPE = Recipe(
    name="macs",
    order=40,
    read=read,
    pattern_fields={"filename": "x.wav"},
    eval_splits=frozenset(),
)
