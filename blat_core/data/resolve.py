"""Which audio file a metadata row means: its dataset's `audio_pattern`, resolved against the listing.

A pattern is a path relative to the dataset's audio folder, with the recipe's placeholders
(`{youtube_id}`, `{split}`, ...). Besides plain paths it may use two wildcards, which are matched
against the `scan` stage's listing of the audio folder instead of naming one path:

- `**` as a whole folder name: any number of sub-folders, none included
  (`{split}_segments/**/Y{youtube_id}.wav` finds PANNs' `unbalanced_train_segments_part07/` folders);
- `*` inside a folder name: any text in that name (`unbalanced_train_segments_part*`);
- `.*` ending the file name: any audio extension (`Y{youtube_id}.*` finds `.wav` and `.flac` alike).

The file name before `.*` is literal (a Clotho name may contain any character). A row that matches no
listed file is `missing_audio`; one that matches two is `ambiguous_audio`, naming both. The index is
built once, keyed by file name (or stem), so resolving is O(files + rows).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from blat_core.data.datasets.common import Problem, SourceRow
from blat_core.data.sources import inside_root, list_audio

log = logging.getLogger(__name__)

ANY_EXTENSION = ".*"


class PatternError(ValueError):
    """An `audio_pattern` using a wildcard where none is supported."""


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern


def check_pattern(pattern: str) -> None:
    """Raise `PatternError` unless every `*` sits where the module docstring allows it."""
    folders, _, name = pattern.rpartition("/")
    stem = name[: -len(ANY_EXTENSION)] if name.endswith(ANY_EXTENSION) else name
    if "*" in stem:
        raise PatternError(
            f"{pattern!r}: the file name may end in '.*' (any audio extension) but holds no other '*'; "
            "put wildcards in folder names ('**' for any sub-folders)"
        )
    for part in folders.split("/") if folders else []:
        if "**" in part and part != "**":
            raise PatternError(f"{pattern!r}: '**' must be a whole folder name, as in 'audio/**/{{name}}.wav'")


@functools.lru_cache(maxsize=4096)
def _folder_matcher(folders: str) -> re.Pattern:
    """A regex for a folder path (with a trailing '/'; '' for the top folder) from a wildcard pattern."""
    pieces = []
    for part in folders.split("/") if folders else []:
        if part == "**":
            pieces.append("(?:[^/]+/)*")
        else:
            pieces.append("[^/]*".join(re.escape(text) for text in part.split("*")) + "/")
    return re.compile("".join(pieces))


class ListingIndex:
    """The audio files of one folder (relative POSIX paths, as `scan` lists them), indexed by file name
    and by stem on first use; `matches(path)` resolves one formatted pattern."""

    def __init__(self, files: Iterable[str]):
        self.files = list(files)
        self._keyed: dict[bool, tuple[dict[str, str], dict[str, list[str]]]] = {}

    def _index(self, by_stem: bool) -> tuple[dict[str, str], dict[str, list[str]]]:
        # One dict of first hits plus a small one of further hits: a list per file would cost ~100 MB at 2M.
        if by_stem not in self._keyed:
            first: dict[str, str] = {}
            more: dict[str, list[str]] = {}
            for path in self.files:
                name = path.rpartition("/")[2]
                key = (name.rpartition(".")[0] or name) if by_stem else name
                if key in first:
                    more.setdefault(key, []).append(path)
                else:
                    first[key] = path
            self._keyed[by_stem] = (first, more)
        return self._keyed[by_stem]

    def matches(self, wanted: str) -> list[str]:
        """Listed files matching `wanted` (a pattern with its placeholders filled in), sorted."""
        folders, _, name = wanted.rpartition("/")
        by_stem = name.endswith(ANY_EXTENSION)
        key = name[: -len(ANY_EXTENSION)] if by_stem else name
        first, more = self._index(by_stem)
        if key not in first:
            return []
        candidates = [first[key], *more.get(key, ())]
        matcher = _folder_matcher(folders)
        found = []
        for path in candidates:
            folder = path.rpartition("/")[0]
            if matcher.fullmatch(folder + "/" if folder else ""):
                found.append(path)
        return sorted(found)


def usable_rows(
    rows: list[SourceRow], root: Path, name: str, index: ListingIndex | None = None
) -> tuple[list[tuple[SourceRow, str]], list[Problem]]:
    """(row, its audio path) for the rows whose audio lies inside the dataset's audio folder, one per audio
    id (the first); the others as problems (`outside_audio_root`, `duplicate_id`). With an `index` (the
    pattern has wildcards) each row's path is first resolved against the listing: `missing_audio` when no
    listed file matches, `ambiguous_audio` when several do; `source_path` becomes the file found."""
    kept, problems, first = [], [], {}
    for row in rows:
        if index is not None:
            found = index.matches(row.source_path)
            if len(found) != 1:
                if found:
                    more = f" (and {len(found) - 2} more)" if len(found) > 2 else ""
                    detail = (f"{row.source_path!r} matches both {found[0]!r} and {found[1]!r}{more}; "
                              f"make prepare.datasets.{name}.audio_pattern narrower")  # fmt: skip
                    problems.append(Problem(row.ref, row.audio_id, "ambiguous_audio", detail))
                else:
                    detail = f"no listed file in {root} matches {row.source_path!r}"
                    problems.append(Problem(row.ref, row.audio_id, "missing_audio", detail))
                continue
            row.source_path = found[0]
        path = inside_root(root, row.source_path)
        if path is None:
            detail = f"{row.source_path!r} is absolute or climbs out of prepare.datasets.{name}.audio"
            problems.append(Problem(row.ref, row.audio_id, "outside_audio_root", detail))
        elif row.audio_id in first:
            detail = f"audio id {row.audio_id!r} is already used by {first[row.audio_id]}"
            problems.append(Problem(row.ref, row.audio_id, "duplicate_id", detail))
        else:
            first[row.audio_id] = row.ref
            kept.append((row, path))
    return kept, problems


def listing_index(audio_root: Path, listing: list[str] | None) -> ListingIndex:
    """The index wildcard patterns resolve against: the scan's listing, or (no scan at hand) a new one."""
    if listing is None:
        listing = [p.as_posix() for p in list_audio(audio_root)[0]] if audio_root.is_dir() else []
    log.info("resolving audio paths against a listing of %d files", len(listing))
    return ListingIndex(listing)
