"""What every dataset recipe shares: the row type its reader fills, the problems it reports, and
tolerant readers for the CSV quirks of the real metadata files (SPEC §4)."""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SourceRow:
    """One clip as its dataset's metadata describes it."""

    audio_id: str
    split: str
    source_path: str  # relative to the dataset's audio folder
    ref: str  # "file:line" for reports
    fold: int = -1
    youtube_id: str = ""
    tag_mids: list[str] = field(default_factory=list)
    tag_names: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Problem:
    """A metadata row or label the reader could not use."""

    ref: str
    audio_id: str
    reason: str
    detail: str


@dataclass
class ReadResult:
    """The clips a reader understood, the problems it met and how many rows it read: the prepare stage
    counts and reports the problems instead of crashing or dropping rows silently."""

    rows: list[SourceRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows_read: int = 0


class MetadataError(RuntimeError):
    """A required metadata file is missing or unreadable as a whole."""


def require(path: Path, hint: str) -> Path:
    if not path.is_file():
        raise MetadataError(f"{path} not found: {hint}")
    return path


def read_text(path: Path) -> str:
    """A metadata file as text: UTF-8 with or without a byte-order mark (which would otherwise stick to
    the first field); a file that is not UTF-8 is a `MetadataError` naming the file and the line."""
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise MetadataError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{data[error.start]:02x}); save it as UTF-8, "
            f"e.g. iconv -f latin1 -t utf-8 {path.name} > fixed.csv"
        ) from None


def csv_rows(path: Path, *, skip_comments: bool = False, header: bool = True):
    """Yield (line number, list of fields) for each data row, with AudioSet's spaces after commas."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""), skipinitialspace=True)
    first = True
    for fields in reader:
        if skip_comments and fields and fields[0].startswith("#"):
            continue
        if header and first:
            first = False
            continue
        first = False
        if fields:
            yield reader.line_num, fields


def read_folds(path: Path, pattern: str, file_key: str, columns: tuple[int, int, int]) -> ReadResult:
    """A single-label, fold-based CSV (ESC-50, UrbanSound8K): `columns` = (file, fold, label) indices."""
    result = ReadResult()
    file_col, fold_col, label_col = columns
    for line, fields in csv_rows(path):
        result.rows_read += 1
        ref = f"{path.name}:{line}"
        try:
            name, fold, label = fields[file_col], int(fields[fold_col]), fields[label_col]
        except (ValueError, IndexError) as error:
            result.problems.append(Problem(ref, fields[0], "malformed_row", str(error)))
            continue
        path_in_audio = pattern.format(**{file_key: name, "fold": fold})
        result.rows.append(SourceRow(Path(name).stem, "all", path_in_audio, ref, fold=fold, labels=[label]))
    return result
