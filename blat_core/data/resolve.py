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
import re
from collections.abc import Iterable

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
