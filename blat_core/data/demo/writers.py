"""Write the demo corpus's metadata in each dataset's real format (SPEC §4), quirks included."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from blat_core.data.demo import labels
from blat_core.data.demo.captions import PlacedEvent, write_caption
from blat_core.data.demo.mixing import seed_for
from blat_core.data.demo.sounds import EVENTS, EVENTS_BY_KEY

if TYPE_CHECKING:
    from blat_core.data.demo.corpus import Corpus


def csv_text(rows: Iterable[list], header: list[str] | None = None) -> str:
    """CSV as the datasets ship it: comma separated, quoted only where needed, '\\n' line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _captions(seed: int, placed: list[PlacedEvent], style: str, count: int, *key: object) -> list[str]:
    """`count` captions of one clip, distinct where the phrasings allow it."""
    rng = np.random.default_rng(seed_for(seed, "caption", *key))
    captions: list[str] = []
    for _ in range(20 * count):
        caption = write_caption(placed, rng, style)
        if caption not in captions:
            captions.append(caption)
        if len(captions) == count:
            return captions
    return (captions * count)[:count]


def _mids(placed: list[PlacedEvent]) -> list[str]:
    return sorted({EVENTS_BY_KEY[e.key].mid for e in placed})


def write_metadata(corpus: Corpus, placed: dict[str, list[PlacedEvent]], root: Path, seed: int) -> None:
    """Write every dataset's metadata files under `root` (audio is already rendered)."""
    rows = corpus.rows
    _write_audioset(rows["audioset"], placed, root / "audioset" / "metadata", seed)
    _write_audiocaps(rows["audiocaps"], placed, root / "audiocaps" / "metadata", seed)
    _write_clotho(rows["clotho"], placed, root / "clotho" / "metadata", seed)
    _write_macs(rows["macs"], placed, root / "macs" / "metadata", seed)
    _write(
        root / "esc50" / "meta" / "esc50.csv",
        csv_text(
            (
                [
                    r["filename"],
                    r["fold"],
                    r["target"],
                    r["category"],
                    r["category"] in labels.ESC10,
                    r["src_file"],
                    r["take"],
                ]
                for _, r in rows["esc50"]
            ),
            ["filename", "fold", "target", "category", "esc10", "src_file", "take"],
        ),
    )
    _write(
        root / "us8k" / "metadata" / "UrbanSound8K.csv",
        csv_text(
            (
                [
                    r["slice_file_name"],
                    r["fsID"],
                    f"{r['start']:.6f}",
                    f"{r['end']:.6f}",
                    r["salience"],
                    r["fold"],
                    r["classID"],
                    r["class"],
                ]
                for _, r in rows["us8k"]
            ),
            ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"],
        ),
    )
    _write_fsd50k(rows["fsd50k"], placed, root / "fsd50k" / "FSD50K.ground_truth")
    _write(
        root / "vggsound" / "metadata" / "vggsound.csv",
        csv_text([r["youtube_id"], r["start"], r["label"], r["split"]] for _, r in rows["vggsound"]),
    )


def _write_audioset(rows, placed, folder: Path, seed: int) -> None:
    classes = [(e.mid, e.display_name) for e in EVENTS] + list(labels.UNUSED_AUDIOSET)
    # The real file quotes every display name (several contain commas).
    _write(
        folder / "class_labels_indices.csv",
        "index,mid,display_name\n" + "".join(f'{i},{mid},"{name}"\n' for i, (mid, name) in enumerate(classes)),
    )
    for split in ("balanced_train", "unbalanced_train", "eval"):
        lines = [
            (r["youtube_id"], r["start"], r["start"] + plan.seconds, _mids(placed[plan.path]))
            for plan, r in rows
            if r["split"] == split
        ]
        header = (
            f"# Segments csv created by the BLAT demo generator (seed {seed})\n"
            f"# num_ytids={len(lines)}, num_segs={len(lines)}, num_unique_labels={len(classes)}, "
            f"num_positive_labels={sum(len(m) for *_, m in lines)}\n"
            "# YTID, start_seconds, end_seconds, positive_labels\n"
        )
        body = "".join(f'{y}, {s:.3f}, {e:.3f}, "{",".join(m)}"\n' for y, s, e, m in lines)
        _write(folder / f"{split}_segments.csv", header + body)


def _write_audiocaps(rows, placed, folder: Path, seed: int) -> None:
    audiocap_id = 90_000
    for split, per_clip in (("train", 1), ("val", 5), ("test", 5)):
        lines = []
        for plan, r in rows:
            if r["split"] != split:
                continue
            for caption in _captions(seed, placed[plan.path], "audiocaps", per_clip, "audiocaps", r["youtube_id"]):
                audiocap_id += 1
                lines.append([audiocap_id, r["youtube_id"], r["start"], caption])
        _write(folder / f"{split}.csv", csv_text(lines, ["audiocap_id", "youtube_id", "start_time", "caption"]))


def _write_clotho(rows, placed, folder: Path, seed: int) -> None:
    for split in ("development", "validation", "evaluation"):
        lines = [
            [r["file_name"], *_captions(seed, placed[plan.path], "clotho", 5, "clotho", r["file_name"])]
            for plan, r in rows
            if r["split"] == split
        ]
        _write(
            folder / f"clotho_captions_{split}.csv",
            csv_text(lines, ["file_name"] + [f"caption_{k}" for k in range(1, 6)]),
        )


def _write_macs(rows, placed, folder: Path, seed: int) -> None:
    files = []
    for plan, r in rows:
        events = placed[plan.path]
        tags = sorted({labels.MACS[e.key] for e in events})
        sentences = _captions(seed, events, "audiocaps", 3, "macs", r["filename"])
        files.append(
            {
                "filename": r["filename"],
                "annotations": [
                    {"annotator_id": 100 + k, "sentence": s, "tags": list(tags)} for k, s in enumerate(sentences)
                ],
            }
        )
    _write(folder / "MACS.yaml", yaml.safe_dump({"files": files}, sort_keys=False))


def _write_fsd50k(rows, placed, folder: Path) -> None:
    vocabulary = sorted(labels.FSD50K.values())
    _write(folder / "vocabulary.csv", csv_text([i, label, mid] for i, (label, mid) in enumerate(vocabulary)))
    for subset in ("dev", "eval"):
        lines = []
        for plan, r in rows:
            if r["subset"] != subset:
                continue
            pairs = sorted(labels.FSD50K[e.key] for e in placed[plan.path])
            line = [r["fname"], ",".join(p[0] for p in pairs), ",".join(p[1] for p in pairs)]
            lines.append(line + ([r["split"]] if subset == "dev" else []))
        header = ["fname", "labels", "mids"] + (["split"] if subset == "dev" else [])
        _write(folder / f"{subset}.csv", csv_text(lines, header))
