"""Make a deliberately damaged copy of a demo corpus, to see every bad-input path of `prepare`.

    python -m blat_core.data.demo.damage data/demo scratch/damaged_demo

Damages (and the skip reason each must produce): deleted files (missing_audio), garbage bytes
(unreadable_audio), a 0-byte file (empty_audio), an all-zero file (silent_audio), malformed
metadata rows (malformed_row), a row whose only label is an unknown mid (no_known_labels) and an
unknown mid beside known ones (counted in unknown_labels, the clip kept).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

UNKNOWN_MID = "/m/not_a_mid"


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".wav", ".flac"))


def _empty(path: Path) -> None:
    path.unlink()
    path.write_bytes(b"")  # an interrupted download


def _silent(path: Path) -> None:
    info = sf.info(path)
    path.unlink()
    sf.write(path, np.zeros((info.frames, info.channels), dtype=np.float32), info.samplerate, subtype="PCM_16")


def _garbage(path: Path) -> None:
    path.unlink()
    path.write_bytes(b"RIFF\x00\x00not really audio" * 20)


def damage_corpus(source: Path, target: Path) -> dict[str, dict[str, int]]:
    """Copy `source` to `target` and damage it; returns the expected counts per dataset and reason."""
    shutil.copytree(source, target, copy_function=shutil.copy)
    expected: dict[str, dict[str, int]] = {}

    # AudioSet: every reason.
    audio = _audio_files(target / "audioset" / "audio" / "unbalanced_train")
    for path in audio[:2]:
        path.unlink()
    for path in audio[2:4]:
        _garbage(path)
    _empty(audio[4])
    _silent(audio[5])
    segments = target / "audioset" / "metadata" / "unbalanced_train_segments.csv"
    lines = segments.read_text().splitlines(keepends=True)
    first_data = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    lines[first_data] = lines[first_data].rstrip('"\n') + f',{UNKNOWN_MID}"\n'
    lines += ["broken_row_without_times\n", f'AAAAAAAAAAA, 0.000, 4.000, "{UNKNOWN_MID}"\n']
    segments.write_text("".join(lines))
    expected["audioset"] = {
        "missing_audio": 2,
        "unreadable_audio": 2,
        "empty_audio": 1,
        "silent_audio": 1,
        "malformed_row": 1,
        "no_known_labels": 1,
        "unknown_labels": 2,
    }

    # ESC-50: a missing and a corrupt file.
    audio = _audio_files(target / "esc50" / "audio")
    audio[0].unlink()
    _garbage(audio[1])
    expected["esc50"] = {"missing_audio": 1, "unreadable_audio": 1}

    # Clotho: a row with only three captions.
    captions = target / "clotho" / "metadata" / "clotho_captions_development.csv"
    captions.write_text(captions.read_text() + "short row.wav,one,two,three\n")
    expected["clotho"] = {"malformed_row": 1}

    # VGGSound: a row with a field missing, and a silent clip.
    listing = target / "vggsound" / "metadata" / "vggsound.csv"
    listing.write_text(listing.read_text() + "XXXXXXXXXXX,12,dog barking\n")
    _silent(_audio_files(target / "vggsound" / "audio")[0])
    expected["vggsound"] = {"malformed_row": 1, "silent_audio": 1}
    return expected


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m blat_core.data.demo.damage SOURCE_CORPUS TARGET_FOLDER")
    for name, counts in damage_corpus(Path(sys.argv[1]), Path(sys.argv[2])).items():
        print(name, counts)
