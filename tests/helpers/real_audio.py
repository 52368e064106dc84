"""A small corpus of real recordings in two download layouts, for the ingest tests.

The recordings are the freedesktop sound theme's Ogg Vorbis files (Debian package
`sound-theme-freedesktop`, which run_tests.sh installs): real microphone and studio sounds at 8, 22.05,
44.1, 48 and 96 kHz, mono and stereo, 0.06 to 6 s. They are written:

- as AudioSet in the layout of the PANNs download scripts: `audios/{balanced_train,eval}_segments/Y<id>.*`
  and `audios/unbalanced_train_segments/unbalanced_train_segments_partNN/Y<id>.*`, WAV and FLAC mixed,
  plus a zero-byte file, a row whose file is missing and a row with both a `.wav` and a `.flac`;
- as Clotho v2.1 from Zenodo: the caption CSVs (and a Latin-1 metadata CSV) beside the `development/`,
  `validation/` and `evaluation/` folders, file names with spaces, commas, parentheses, `&` and `'`.

`EXPECTED` holds the counts `prepare` must report. Building takes a few seconds; the tests cache it.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import soundfile as sf

SOUNDS = Path("/usr/share/sounds/freedesktop/stereo")
VERSION = "2"  # bump when the layout below changes (invalidates the cached copy)

# A few ids start with '-', as real YouTube ids may (the reason for PANNs' 'Y' prefix).
CLASSES = [("/m/0k4j", "Car"), ("/m/0ytgt", "Child speech, kid speaking"), ("/m/04rlf", "Music")]

EXPECTED = {
    "audioset": {
        "rows_read": 30,  # 27 recordings + a zero-byte file + a missing file + a clip stored twice
        "clips": 25,  # two recordings (0.06 s and 0.07 s) are shorter than prepare.min_seconds = 0.1
        "skipped": {"ambiguous_audio": 1, "empty_audio": 1, "missing_audio": 1, "too_short": 2},
        "by_split": {"balanced_train": 8, "eval": 5, "unbalanced_train": 12},
        "flac": 13,
    },
    "clotho": {"rows_read": 9, "clips": 9, "skipped": {}},
}


def recordings() -> list[Path]:
    """The theme's regular files (its symlinks are aliases of these), sorted by name."""
    return sorted(p for p in SOUNDS.glob("*.oga") if p.is_file() and not p.is_symlink())


def available() -> bool:
    return len(recordings()) >= 27


MISSING = f"needs Debian's sound-theme-freedesktop recordings in {SOUNDS} (run_tests.sh adds them)"


def require() -> None:
    """Skip the calling test when the recordings are not installed, or fail it under CI (CI=true), where
    run_tests.sh installs them: a test that quietly skips there would hide a broken install."""
    if available():
        return
    import pytest

    if os.environ.get("CI"):
        pytest.fail(MISSING)
    pytest.skip(MISSING)


def _write(path: Path, source: Path, fmt: str) -> None:
    samples, rate = sf.read(source, dtype="float32", always_2d=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, format=fmt, subtype="PCM_16")


def build_audioset(root: Path) -> None:
    sounds = recordings()[:27]
    meta, audio = root / "metadata", root / "audios"
    meta.mkdir(parents=True)
    rows = {"balanced_train": [], "eval": [], "unbalanced_train": []}
    for i, sound in enumerate(sounds):
        ytid = f"{'-' if i % 5 == 0 else 'a'}{i:02d}Xy_{sound.stem[:4]}"
        split = "balanced_train" if i < 8 else "eval" if i < 14 else "unbalanced_train"
        fmt = "FLAC" if i % 2 else "WAV"
        folder = f"{split}_segments"
        if split == "unbalanced_train":
            folder += f"/unbalanced_train_segments_part{i % 3:02d}"
        _write(audio / folder / f"Y{ytid}.{fmt.lower()}", sound, fmt)
        rows[split].append((ytid, CLASSES[i % 3][0]))
    # A failed download (0 bytes), a row without a file, and a clip stored twice (.wav and .flac).
    empty = audio / "unbalanced_train_segments/unbalanced_train_segments_part01/Yzero_bytes0.wav"
    empty.write_bytes(b"")
    rows["unbalanced_train"] += [("zero_bytes0", "/m/0k4j"), ("never_downloaded", "/m/04rlf")]
    for fmt in ("WAV", "FLAC"):
        _write(audio / f"eval_segments/Ytwice_stored.{fmt.lower()}", sounds[3], fmt)
    rows["eval"].append(("twice_stored", "/m/04rlf"))
    (meta / "class_labels_indices.csv").write_text(
        "index,mid,display_name\n" + "".join(f'{i},{mid},"{name}"\n' for i, (mid, name) in enumerate(CLASSES))
    )
    for split, entries in rows.items():
        header = "# Segments csv\n# num_ytids=x\n# YTID, start_seconds, end_seconds, positive_labels\n"
        body = "".join(f'{ytid}, 30.000, 40.000, "{mid}"\n' for ytid, mid in entries)
        (meta / f"{split}_segments.csv").write_text(header + body)


CLOTHO_NAMES = {  # unique across splits, as in Clotho (the file name is the clip's id)
    "development": ["Rain on a roof, heavy (2).wav", "Kitchen & cups.wav", "Bird's song at dawn.wav"],
    "validation": ["Tram stop, evening.wav", "Door & keys (1).wav", "Children's playground.wav"],
    "evaluation": ["Harbour waves, calm.wav", "Pots & pans (3).wav", "Market's end.wav"],
}


def build_clotho(root: Path) -> None:
    sounds = recordings()[:27]
    root.mkdir(parents=True)
    for s, split in enumerate(("development", "validation", "evaluation")):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["file_name", *(f"caption_{k}" for k in range(1, 6))])
        for n, name in enumerate(CLOTHO_NAMES[split]):
            sound = sounds[(s * 3 + n) * 3 % len(sounds)]
            _write(root / split / name, sound, "WAV")
            writer.writerow([name, *(f"a recorded sound, take {k}, from {sound.stem}" for k in range(5))])
        (root / f"clotho_captions_{split}.csv").write_text(buffer.getvalue())
        # The real metadata files are ISO-8859-1; they are fingerprinted, never decoded.
        latin1 = "file_name,keywords\nCaf\xe9.wav,caf\xe9\n".encode("latin-1")
        (root / f"clotho_metadata_{split}.csv").write_bytes(latin1)


def build(root: Path) -> None:
    build_audioset(root / "audioset")
    build_clotho(root / "clotho")


# ---------------------------------------------------------------- datasets of your own (docs/your-data.md)
LABEL_GROUPS = {  # a recording's name prefix -> its label in the labels set (groups of two or more recordings)
    "audio": "audio channel", "device": "device", "dialog": "dialog box", "message": "message", "phone": "phone call",
    "service": "service",
}  # fmt: skip


def _words(sound: Path) -> str:
    return sound.stem.replace("-", " ")


def build_user_captions(root: Path) -> dict:
    """A user's captioned folder: `sounds/<first word>/<name>.{wav,flac}` and `captions.csv` (UTF-8 with a BOM,
    capitalised header `File,Caption`, one row per caption, one to three captions per clip, no split column).
    Returns the counts prepare must report."""
    rows = []
    for i, sound in enumerate(recordings()):
        fmt = "FLAC" if i % 3 == 0 else "WAV"
        file = f"sounds/{sound.stem.split('-')[0]}/{sound.stem}.{fmt.lower()}"
        _write(root / file, sound, fmt)
        texts = [f"the {_words(sound)} sound", f"a short computer alert, {_words(sound)}",
                 f"someone hears {_words(sound)}"][: 1 + i % 3]  # fmt: skip
        rows += [[file, text] for text in texts]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["File", "Caption"])
    writer.writerows(rows)
    (root / "captions.csv").write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode())
    return {"rows_read": len(rows), "files": len(recordings())}


def build_user_labels(root: Path) -> dict:
    """A user's labelled folder: `wav/<name>.wav` and `labels.tsv` (file, label; single-label; no split column)
    for the recordings of LABEL_GROUPS. Returns {"clips": n, "classes": sorted labels}."""
    lines = ["file\tlabel"]
    for sound in recordings():
        label = LABEL_GROUPS.get(sound.stem.split("-")[0])
        if label:
            _write(root / "wav" / f"{sound.stem}.wav", sound, "WAV")
            lines.append(f"wav/{sound.stem}.wav\t{label}")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n")
    return {"clips": len(lines) - 1, "classes": sorted({line.split("\t")[1] for line in lines[1:]})}
