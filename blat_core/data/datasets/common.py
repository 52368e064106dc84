"""What every dataset recipe shares: the row type its reader fills, the problems it reports, and
tolerant readers for the CSV quirks of the real metadata files (SPEC §4)."""

from __future__ import annotations

import codecs
import csv
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
    except UnicodeDecodeError:
        raise _not_utf8(path) from None


def _not_utf8(path: Path, block: int = 1 << 20) -> MetadataError:
    """The error for a file that is not UTF-8, naming the line and value of its first bad byte (found by decoding
    the file again block by block)."""
    decoder, line = codecs.getincrementaldecoder("utf-8")(), 1
    with open(path, "rb") as handle:
        while data := handle.read(block):
            try:
                decoder.decode(data)
            except UnicodeDecodeError as error:  # error.object: the block after a partial character held back
                line += error.object[: error.start].count(b"\n")
                return MetadataError(f"{path}:{line}: not valid UTF-8 (byte 0x{error.object[error.start]:02x}); save "
                                     f"it as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > fixed.csv")  # fmt: skip
            line += data.count(b"\n")
    return MetadataError(f"{path}: not valid UTF-8 (it ends inside a character); save it as UTF-8")


MAX_LINE_CHARS = 1 << 20  # a metadata line longer than this (a caption is ~100 characters) is a problem, unread


def csv_rows(path: Path, *, skip_comments: bool = False, header: bool = True, result: ReadResult | None = None,
             delimiter: str = ",", skip_initial_space: bool = True):  # fmt: skip
    """Yield (line number, list of fields) for each non-empty data row (AudioSet's spaces after commas skipped by
    default), reading the file as a stream of UTF-8 (a byte-order mark dropped) in bounded memory: a line over
    MAX_LINE_CHARS or a field over csv's limit (131,072) is not yielded but counted in `result` (rows_read and a
    `malformed_row` problem naming the line), or, without a `result`, a MetadataError naming the file and line."""
    oversized: set[int] = set()
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(_bounded_lines(handle, oversized), delimiter=delimiter,
                            skipinitialspace=skip_initial_space)  # fmt: skip
        first = True
        while True:
            try:
                fields = next(reader)
                problem = f"a line longer than {MAX_LINE_CHARS:,} characters" if reader.line_num in oversized \
                    else ""  # fmt: skip
            except StopIteration:
                return
            except csv.Error as error:  # a field over csv.field_size_limit()
                fields, problem = [], str(error)
            except UnicodeDecodeError:
                raise _not_utf8(path) from None
            if problem:
                if result is None:
                    raise MetadataError(f"{path}:{reader.line_num}: {problem}; not a metadata row")
                result.rows_read += 1
                result.problems.append(Problem(f"{path.name}:{reader.line_num}", "", "malformed_row", problem))
                first = False
                continue
            if skip_comments and fields and fields[0].startswith("#"):
                continue
            if header and first:
                first = False
                continue
            first = False
            if fields:
                yield reader.line_num, fields


def _bounded_lines(handle, oversized: set[int]):
    """The file's lines for csv, each at most MAX_LINE_CHARS read into memory: a longer line is skipped to its
    end and given to csv as an empty line, its number added to `oversized`."""
    number = 0
    while True:
        line = handle.readline(MAX_LINE_CHARS)
        if not line:
            return
        number += 1
        if len(line) == MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            while (rest := handle.readline(MAX_LINE_CHARS)) and not rest.endswith(("\n", "\r")):
                pass
            oversized.add(number)
            line = "\n"
        yield line


def read_folds(path: Path, pattern: str, file_key: str, columns: tuple[int, int, int]) -> ReadResult:
    """A single-label, fold-based CSV (ESC-50, UrbanSound8K): `columns` = (file, fold, label) indices."""
    result = ReadResult()
    file_col, fold_col, label_col = columns
    for line, fields in csv_rows(path, result=result):
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
