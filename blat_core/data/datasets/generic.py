"""Your own data, without code: two generic recipes a `prepare.datasets.<any name>` entry selects with `recipe:`.

    captions   one metadata table: `file`, then `caption` (one row per caption; rows of one file are
               merged) or `caption_1` ... `caption_N` (empty cells ignored), optional `split`
    labels     `file`, `label` or `labels` (several separated by `label_delimiter`, default ";"),
               optional `fold` (integers: cross-validation over the folds) or `split`

The table is CSV, or TSV when its name ends in .tsv/.tab; UTF-8, a byte-order mark tolerated; column names
are matched without case and surrounding spaces. `split` values are train, val (or validation) and test (val
and test are never trained on). Without a split (or fold) column the split is drawn from `split_seed`: the files are
ordered by a hash of the seed and their name and the first `test_fraction` / `val_fraction` of them
become test / val (for a single-label set within each label, so every label keeps its training clips). The
draw depends only on the seed and the file names, so re-running gives the same split; prepare writes it out
(`assigned_splits.csv`). A labels set is multi-label when any file has more than one label (scored by mAP),
single-label otherwise (accuracy). docs/your-data.md walks through both.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from blat_core.data.datasets import Classification, Recipe
from blat_core.data.datasets.common import MetadataError, Problem, ReadResult, SourceRow, csv_rows, require

KINDS = ("captions", "labels")
SPLITS = ("train", "val", "test")
ALIASES = {"validation": "val", "valid": "val"}  # split values read as another
EVAL_SPLITS = frozenset({"val", "test"})
PATTERN_FIELDS = {"file": "x.wav", "split": "train", "fold": 1}
_NUMBERED = re.compile(r"caption_(\d+)$")


@dataclass(frozen=True)
class SplitDraw:
    """How a table without a split column is split (`prepare.datasets.<name>` keys of the same names)."""

    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2


def make_recipe(kind: str, name: str, metadata: str, draw: SplitDraw, label_delimiter: str = ";") -> Recipe:
    """The recipe of user dataset `name`: read `metadata` (a file inside the dataset's meta folder) as `kind`."""
    if kind not in KINDS:
        raise ValueError(f"unknown recipe {kind!r}; valid: {', '.join(KINDS)}")

    def read(meta: Path, pattern: str, joins: dict[str, Path]) -> ReadResult:
        path = require(meta / metadata, f"prepare.datasets.{name}.metadata names the table inside its root "
                                        f"(or meta folder); docs/your-data.md")  # fmt: skip
        table = read_table(path)
        if kind == "captions":
            return read_captions(path, table, pattern, draw)
        return read_labels(path, table, pattern, draw, label_delimiter)

    return Recipe(name=name, order=1000, read=read, pattern_fields=PATTERN_FIELDS, eval_splits=EVAL_SPLITS,
                  retrieval_target=kind == "captions",
                  notes={"recipe": kind})  # fmt: skip


# ---------------------------------------------------------------- the table
@dataclass
class Table:
    path: Path
    columns: dict[str, int]  # normalised name -> index
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (line, fields)
    unread: ReadResult  # the rows over csv_rows' bounds: counted, as problems, in the reader's result

    def has(self, column: str) -> bool:
        return column in self.columns

    def get(self, fields: list[str], column: str) -> str:
        index = self.columns[column]
        return fields[index].strip() if index < len(fields) else ""


def read_table(path: Path) -> Table:
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    rows, header, unread = [], None, ReadResult()
    for line, fields in csv_rows(path, header=False, result=unread, delimiter=delimiter, skip_initial_space=False):
        if not any(f.strip() for f in fields):
            continue
        if header is None:
            header = fields
        else:
            rows.append((line, fields))
    if header is None:
        raise MetadataError(f"{path} is empty: it needs a header row (e.g. file,caption) and one row per clip")
    columns = {}
    for index, column in enumerate(header):
        key = column.strip().lower()
        if key in columns:
            raise MetadataError(f"{path}: column {column.strip()!r} appears twice in the header")
        columns[key] = index
    return Table(path, columns, [c.strip() for c in header], rows, unread)


def _need(table: Table, kind: str, needed: str) -> None:
    if "file" in table.columns and any(table.has(c) for c in needed.split("|")):
        return
    hint = ""
    for alias in ("filename", "file_name", "path", "fname", "audio", "audio_file"):
        if table.has(alias):
            hint = f"; rename {table.header[table.columns[alias]]!r} to 'file'"
    sep = "," if table.path.suffix.lower() not in (".tsv", ".tab") else "a tab"
    if len(table.header) == 1 and ("\t" in table.header[0] or ";" in table.header[0] or "," in table.header[0]):
        hint += f"; the header is one column: is the file separated by {sep}? (.tsv/.tab files are read as TSV)"
    want = {"captions": "'file' and 'caption' (or caption_1, caption_2, ...), optional 'split'",
            "labels": "'file' and 'label' (or 'labels'), optional 'fold' or 'split'"}[kind]  # fmt: skip
    raise MetadataError(f"{table.path}: a {kind} dataset needs the columns {want}; found "
                        f"{', '.join(repr(c) for c in table.header)}{hint}")  # fmt: skip


def _check_splits(table: Table, seen: dict[str, int]) -> None:
    bad = sorted(set(seen) - set(SPLITS))
    if bad:
        where = ", ".join(f"{value!r} (line {seen[value]})" for value in bad[:5])
        raise MetadataError(f"{table.path}: unknown split value(s) {where}; the split column takes "
                            f"{', '.join(SPLITS)} (val also as validation or valid), or drop the column for a seeded "
                            "split (docs/your-data.md)")


def _ref(table: Table, line: int) -> str:
    return f"{table.path.name}:{line}"


# ---------------------------------------------------------------- captions
def read_captions(path: Path, table: Table, pattern: str, draw: SplitDraw) -> ReadResult:
    numbered = sorted((int(m.group(1)), i) for c, i in table.columns.items() if (m := _NUMBERED.match(c)))
    if table.has("caption") and numbered:
        raise MetadataError(f"{path}: give either one 'caption' column (a row per caption) or caption_1..caption_N, "
                            "not both")  # fmt: skip
    _need(table, "captions", "caption" if not numbered else "file")
    if numbered and [n for n, _ in numbered] != list(range(1, len(numbered) + 1)):
        raise MetadataError(f"{path}: numbered caption columns must run caption_1, caption_2, ... without gaps; "
                            f"found {', '.join(f'caption_{n}' for n, _ in numbered)}")  # fmt: skip
    result, order, captions, first_line, splits = table.unread, [], defaultdict(list), {}, {}
    split_lines: dict[str, int] = {}
    for line, fields in table.rows:
        result.rows_read += 1
        file = table.get(fields, "file")
        if not file:
            result.problems.append(Problem(_ref(table, line), "", "malformed_row", "the 'file' cell is empty"))
            continue
        texts = ([table.get(fields, "caption")] if not numbered
                 else [fields[i].strip() if i < len(fields) else "" for _, i in numbered])  # fmt: skip
        if file not in first_line:
            first_line[file] = line
            order.append(file)
        captions[file] += [t for t in texts if t]
        if table.has("split"):
            value = table.get(fields, "split").lower()
            value = ALIASES.get(value, value)
            split_lines.setdefault(value, line)
            if splits.setdefault(file, value) != value:
                raise MetadataError(f"{path}:{line}: {file!r} is in split {value!r} here and {splits[file]!r} on "
                                    f"line {first_line[file]}; a file belongs to one split")  # fmt: skip
    _check_splits(table, split_lines)
    assigned = splits if table.has("split") else draw_splits(order, {}, draw)
    for file in order:
        ref = _ref(table, first_line[file])
        if not captions[file]:
            result.problems.append(Problem(ref, file, "no_captions", "every caption cell of this file is empty"))
            continue
        path_in_audio = pattern.format(file=file, split=assigned[file], fold=-1)
        result.rows.append(SourceRow(file, assigned[file], path_in_audio, ref, captions=captions[file]))
    return result


# ---------------------------------------------------------------- labels
def read_labels(path: Path, table: Table, pattern: str, draw: SplitDraw, delimiter: str) -> ReadResult:
    _need(table, "labels", "label|labels")
    if table.has("label") and table.has("labels"):
        raise MetadataError(f"{path}: give one of the columns 'label' and 'labels', not both")
    if table.has("fold") and table.has("split"):
        raise MetadataError(f"{path}: give a 'fold' column (cross-validation) or a 'split' column, not both")
    column = "label" if table.has("label") else "labels"
    result, parsed, split_lines = table.unread, [], {}
    for line, fields in table.rows:
        result.rows_read += 1
        ref, file = _ref(table, line), table.get(fields, "file")
        labels = [label.strip() for label in table.get(fields, column).split(delimiter) if label.strip()]
        if not file:
            result.problems.append(Problem(ref, "", "malformed_row", "the 'file' cell is empty"))
            continue
        if not labels:
            result.problems.append(Problem(ref, file, "no_labels", f"the {column!r} cell is empty"))
            continue
        fold, split = -1, ""
        if table.has("fold"):
            try:
                fold = int(table.get(fields, "fold"))
            except ValueError:
                result.problems.append(Problem(ref, file, "malformed_row",
                                               f"fold {table.get(fields, 'fold')!r} is not an integer"))  # fmt: skip
                continue
        elif table.has("split"):
            split = table.get(fields, "split").lower()
            split = ALIASES.get(split, split)
            split_lines.setdefault(split, line)
        parsed.append((ref, file, labels, fold, split))
    _check_splits(table, split_lines)
    if table.has("fold"):
        assigned = {file: "all" for _, file, *_ in parsed}
    elif table.has("split"):
        assigned = {file: split for _, file, _, _, split in parsed}
    else:
        single = all(len(labels) == 1 for _, _, labels, _, _ in parsed)
        strata = {file: labels[0] for _, file, labels, _, _ in parsed} if single else {}
        assigned = draw_splits(list(dict.fromkeys(file for _, file, *_ in parsed)), strata, draw)
    for ref, file, labels, fold, _ in parsed:
        path_in_audio = pattern.format(file=file, split=assigned[file], fold=fold)
        result.rows.append(SourceRow(file, assigned[file], path_in_audio, ref, fold=fold, labels=labels))
    return result


def classification_of(rows: list[dict]) -> Classification:
    """How a prepared labels set is scored, from its rows: multi-label when a clip has several labels; over the
    folds when it has folds, else trained on train + val and tested on test."""
    multi = any(len(r["labels"]) > 1 for r in rows)
    folds = any(r["fold"] >= 0 for r in rows)
    return Classification(multi_label=multi, primary_metric="mAP" if multi else "accuracy",
                          train_splits=() if folds else ("train", "val"), test_split=None if folds else "test")


# ---------------------------------------------------------------- the seeded split
def _rank(seed: int, file: str) -> str:
    return hashlib.sha256(f"{seed}\0{file}".encode()).hexdigest()


def draw_splits(files: list[str], strata: dict[str, str], draw: SplitDraw) -> dict[str, str]:
    """file -> train/val/test: within each stratum (one group when `strata` is empty) the files in hash order,
    the first round(test_fraction * n) test, the next round(val_fraction * n) val; a stratum keeps at least
    one training file."""
    groups = defaultdict(list)
    for file in files:
        groups[strata.get(file, "")].append(file)
    out = {}
    for members in groups.values():
        members.sort(key=lambda f: _rank(draw.seed, f))
        n = len(members)
        test = min(round(draw.test_fraction * n), max(0, n - 1))
        val = min(round(draw.val_fraction * n), max(0, n - 1 - test))
        for i, file in enumerate(members):
            out[file] = "test" if i < test else "val" if i < test + val else "train"
    return out
