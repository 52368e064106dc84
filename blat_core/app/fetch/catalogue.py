"""What `blat fetch` knows: each public dataset's files, published checksums and extraction steps.

Published checksums are Zenodo's md5 per file (as aac-datasets and soundata record them). ESC-50 publishes
no archive checksum (GitHub builds the archive on request): it is checked by its content, 2,000 clips. The
YouTube sets' CSVs have no checksum either: each is checked by its first line and a minimum row count.

Size bounds (`max_bytes` per download, `max_unpacked` per archive) stop an endless or oversized body and an
archive bomb. They are deliberately loose upper bounds, not the published sizes (which we have not recorded
to the byte), each well above what is known of the data: ESC-50 is 2,000 clips of 5 s at 44.1 kHz 16-bit
(882 MB of samples); Clotho v2.1's five archives are about 8.9 GB in all and its development audio about
7.1 GB unpacked, validation and evaluation about 2 GB each (aac-datasets' documentation); FSD50K is 80.4 h
(development) + 27.9 h (evaluation) of 44.1 kHz 16-bit mono, about 25.5 GB + 8.9 GB (the FSD50K paper);
UrbanSound8K is 8,732 clips of at most 4 s. Row minimums are below the published counts (AudioSet: 527
classes, 22,160 balanced and 20,371 evaluation segments, about 2.04 M unbalanced; AudioCaps: about 49.8 K
training, 2.5 K validation and 4.9 K test rows; VGGSound: about 199 K rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ZENODO = "https://zenodo.org/records"
MB, GB = 10**6, 10**9


class FetchError(RuntimeError):
    """A download or an archive that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Remote:
    """One published file. `md5` is the published checksum; None where the publisher gives none, and then
    `header` (what its first line starts with) and `min_rows` (lines after it) check its content instead.
    `max_bytes`: the most a download may write (a bound above the real size, see the module docstring)."""

    name: str
    url: str
    md5: str | None
    max_bytes: int = 1 * GB
    header: str | None = None
    min_rows: int = 0


@dataclass(frozen=True)
class Extract:
    """Unpack archive `parts` (one, or a multi-part zip's `.z01 … .zip` in order) into `into` (relative to
    the root); `strip` drops the archive's single top folder (`ESC-50-<commit>/`, `UrbanSound8K/`)."""

    parts: tuple[str, ...]
    into: str = "."
    strip: bool = False
    max_unpacked: int = 16 * GB  # the most its members may declare in all (a bound, see the module docstring)
    max_ratio: int = 20  # declared unpacked bytes per archive byte: audio barely compresses, bombs do


@dataclass(frozen=True)
class Source:
    dataset: str
    remotes: tuple[Remote, ...]
    extract: tuple[Extract, ...] = ()
    expect: tuple[str, ...] = ()  # paths that exist under the root when it is complete
    counts: tuple[tuple[str, int], ...] = ()  # (folder, audio files it holds when complete)
    params: str = ""  # the prepare.datasets entry to use
    note: str = ""
    id_list: Callable[[Path], list[dict]] | None = None  # YouTube sets: rows of download_list.csv


def _zenodo(record: int, *files: tuple[str, str, int]) -> tuple[Remote, ...]:
    """(name, md5, max_bytes) of a Zenodo record's files."""
    return tuple(Remote(name, f"{ZENODO}/{record}/files/{name}?download=1", md5, bound) for name, md5, bound in files)


ESC50_COMMIT = "33c8ce9eb2cf0b1c2f8bcf322eb349b6be34dbb6"
FSD50K_PARTS = {
    "FSD50K.dev_audio": (("z01", "faa7cf4cc076fc34a44a479a5ed862a3"), ("z02", "8f9b66153e68571164fb1315d00bc7bc"),
                         ("z03", "1196ef47d267a993d30fa98af54b7159"), ("z04", "d088ac4e11ba53daf9f7574c11cccac9"),
                         ("z05", "81356521aa159accd3c35de22da28c7f"), ("zip", "c480d119b8f7a7e32fdb58f3ea4d6c5a")),
    "FSD50K.eval_audio": (("z01", "3090670eaeecc013ca1ff84fe4442aeb"), ("zip", "6fa47636c3a3ad5c7dfeba99f2637982")),
}  # fmt: skip
CLOTHO = {  # split: (audio archive md5, captions md5, metadata md5) of Clotho v2.1 (Zenodo 4783391)
    "development": ("c8b05bc7acdb13895bb3c6a29608667e", "d4090b39ce9f2491908eebf4d5b09bae",
                    "170d20935ecfdf161ce1bb154118cda5"),
    "validation": ("7dba730be08bada48bd15dc4e668df59", "5879e023032b22a2c930aaa0528bead4",
                   "2e010427c56b1ce6008b0f03f41048ce"),
    "evaluation": ("4569624ccadf96223f19cb59fe4f849f", "1b16b9e57cf7bdb7f13a13802aeb57e2",
                   "13946f054d4e1bf48079813aac61bf77"),
}  # fmt: skip
CLOTHO_BOUND = {"development": 9 * GB, "validation": 3 * GB, "evaluation": 3 * GB}  # archive and unpacked audio
FSD50K_BOUND = {"FSD50K.dev_audio": 30 * GB, "FSD50K.eval_audio": 11 * GB}  # unpacked audio; each part smaller
AUDIOSET_CSV = "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv"
AUDIOCAPS_HEADER = "audiocap_id,youtube_id,start_time,caption"
AUDIOCAPS_CSV = "https://raw.githubusercontent.com/cdjkim/audiocaps/master/dataset"


def _audioset_ids(root: Path) -> list[dict]:
    """The clips of AudioSet's three segment lists, read by the AudioSet recipe (comment lines, quoted mid
    lists, malformed and duplicate rows handled as `prepare` handles them)."""
    from blat_core.data.datasets.audioset import read_class_labels, read_segments

    segments, _ = read_segments(root / "metadata", read_class_labels(root / "metadata"))
    return [{"youtube_id": ytid, "start_seconds": start, "end_seconds": end, "split": split,
             "file": f"audios/{split}_segments/Y{ytid}.wav"}
            for ytid, (split, start, end, _, _) in segments.items()]  # fmt: skip


def _audiocaps_ids(root: Path) -> list[dict]:
    from blat_core.data.datasets.common import csv_rows

    rows, seen = [], set()
    for split in ("train", "val", "test"):
        for _, fields in csv_rows(root / f"{split}.csv"):
            if len(fields) >= 3 and (fields[1], fields[2]) not in seen:
                seen.add((fields[1], fields[2]))
                start = int(float(fields[2]))
                rows.append({"youtube_id": fields[1], "start_seconds": start, "end_seconds": start + 10,
                             "split": split, "file": f"audio_32000Hz/{split}/{fields[1]}_{start}.flac"})  # fmt: skip
    return rows


def _vggsound_ids(root: Path) -> list[dict]:
    from blat_core.data.datasets.common import csv_rows

    rows = []
    for _, fields in csv_rows(root / "vggsound.csv", header=False):
        if len(fields) == 4:
            start = int(fields[1])
            rows.append({"youtube_id": fields[0], "start_seconds": start, "end_seconds": start + 10,
                         "split": fields[3], "file": f"audio/{fields[0]}_{start:06d}.flac"})  # fmt: skip
    return rows


SOURCES: dict[str, Source] = {
    "esc50": Source(
        "esc50",
        (Remote("ESC-50-master.zip", f"https://github.com/karolpiczak/ESC-50/archive/{ESC50_COMMIT}.zip", None,
                1200 * MB),),  # fmt: skip
        (Extract(("ESC-50-master.zip",), strip=True, max_unpacked=1200 * MB),),
        expect=("meta/esc50.csv", "audio"),
        counts=(("audio", 2000),),
        params='{root: DIR, meta: meta, audio: audio, audio_pattern: "{filename}"}',
    ),
    "us8k": Source(
        "us8k",
        _zenodo(1203745, ("UrbanSound8K.tar.gz", "9aa69802bbf37fb986f71ec1483a196e", 10 * GB)),
        (Extract(("UrbanSound8K.tar.gz",), strip=True, max_unpacked=12 * GB),),
        expect=("metadata/UrbanSound8K.csv", "audio/fold10"),
        counts=(("audio", 8732),),
        params='{root: DIR, meta: metadata, audio: audio, audio_pattern: "fold{fold}/{slice_file_name}"}',
    ),
    "clotho": Source(
        "clotho",
        tuple(
            remote
            for split, (audio, captions, metadata) in CLOTHO.items()
            for remote in _zenodo(
                4783391,
                (f"clotho_audio_{split}.7z", audio, CLOTHO_BOUND[split]),
                (f"clotho_captions_{split}.csv", captions, 20 * MB),
                (f"clotho_metadata_{split}.csv", metadata, 20 * MB),
            )  # fmt: skip
        ),
        tuple(Extract((f"clotho_audio_{split}.7z",), max_unpacked=CLOTHO_BOUND[split]) for split in CLOTHO),
        expect=tuple(f"clotho_captions_{split}.csv" for split in CLOTHO) + tuple(CLOTHO),
        counts=(("development", 3839), ("validation", 1045), ("evaluation", 1045)),
        params='{root: DIR, audio_pattern: "{split}/{file_name}"}',
    ),
    "fsd50k": Source(
        "fsd50k",
        tuple(
            remote
            for stem, parts in FSD50K_PARTS.items()
            for remote in _zenodo(4060432, *((f"{stem}.{ext}", md5, FSD50K_BOUND[stem]) for ext, md5 in parts))
        )
        + _zenodo(
            4060432,
            ("FSD50K.ground_truth.zip", "ca27382c195e37d2269c4c866dd73485", 100 * MB),
            ("FSD50K.metadata.zip", "b9ea0c829a411c1d42adb9da539ed237", 200 * MB),
        ),  # fmt: skip
        tuple(Extract(tuple(f"{stem}.{ext}" for ext, _ in parts), max_unpacked=FSD50K_BOUND[stem])
              for stem, parts in FSD50K_PARTS.items())  # fmt: skip
        + (Extract(("FSD50K.ground_truth.zip",), max_unpacked=1 * GB, max_ratio=200),
           Extract(("FSD50K.metadata.zip",), max_unpacked=2 * GB, max_ratio=200)),  # text compresses well  # fmt: skip
        expect=(
            "FSD50K.ground_truth/dev.csv",
            "FSD50K.ground_truth/vocabulary.csv",
            "FSD50K.dev_audio",
            "FSD50K.eval_audio",
        ),  # fmt: skip
        counts=(("FSD50K.dev_audio", 40966), ("FSD50K.eval_audio", 10231)),
        params='{root: DIR, meta: FSD50K.ground_truth, audio: ., audio_pattern: "FSD50K.{subset}_audio/{fname}.wav"}',
    ),
    "macs": Source(
        "macs",
        _zenodo(
            5114771,
            ("MACS.yaml", "23fcb2ebd0b109094034ef9e87972256", 50 * MB),
            ("MACS_competence.csv", "4dfe9f951f0af9f29cb7952ec030370a", 10 * MB),
            ("LICENSE.txt", "d3086f4517cccc32c1bb3a081b07cfa1", 1 * MB),
        ),  # fmt: skip
        expect=("MACS.yaml",),
        params='{root: DIR, audio_pattern: "**/{filename}"}',
        note="MACS annotates the TAU Urban Acoustic Scenes 2019 development audio (Zenodo record 2589280, "
        "21 zip files): extract its audio/ folder under DIR; the pattern finds the files in any sub-folder.",
    ),
    "audioset": Source(
        "audioset",
        tuple(
            Remote(f"metadata/{name}", f"{AUDIOSET_CSV}/{name}", None, bound, header, rows)
            for name, bound, header, rows in (
                ("class_labels_indices.csv", 1 * MB, "index,mid,display_name", 527),
                ("balanced_train_segments.csv", 50 * MB, "# Segments csv", 20_000),
                ("eval_segments.csv", 50 * MB, "# Segments csv", 18_000),
                ("unbalanced_train_segments.csv", 1 * GB, "# Segments csv", 2_000_000),
            )
        ),  # fmt: skip
        expect=("metadata/eval_segments.csv",),
        params='{root: DIR, meta: metadata, audio: audios, audio_pattern: "{split}_segments/**/Y{youtube_id}.*"}',
        note="AudioSet's audio comes from YouTube: fetch the clips of download_list.csv with a YouTube downloader "
        "(docs/real-data.md), or use the PANNs download scripts, whose layout the pattern accepts as it is.",
        id_list=_audioset_ids,
    ),
    "audiocaps": Source(
        "audiocaps",
        tuple(Remote(f"{split}.csv", f"{AUDIOCAPS_CSV}/{split}.csv", None, 50 * MB, AUDIOCAPS_HEADER, rows)
              for split, rows in (("train", 40_000), ("val", 2_000), ("test", 4_000))),  # fmt: skip
        expect=("test.csv",),
        params='{root: DIR, audio: audio_32000Hz, audio_pattern: "{split}/{youtube_id}_{start_time}.*"}',
        note="AudioCaps' audio comes from YouTube: fetch download_list.csv's clips with a YouTube downloader "
        "(docs/real-data.md); aac-datasets writes this same layout.",
        id_list=_audiocaps_ids,
    ),
    "vggsound": Source(
        "vggsound",
        (Remote("vggsound.csv", "https://www.robots.ox.ac.uk/~vgg/data/vggsound/vggsound.csv", None, 100 * MB,
                None, 150_000),),  # no header line  # fmt: skip
        expect=("vggsound.csv",),
        params='{root: DIR, audio: audio, audio_pattern: "{youtube_id}_{start:06d}.*"}',
        note="VGGSound's audio comes from YouTube: fetch download_list.csv's clips with a YouTube downloader "
        "(docs/real-data.md).",
        id_list=_vggsound_ids,
    ),
}
