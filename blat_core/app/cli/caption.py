"""`blat caption`: caption audio files with a trained captioner (tag-guided or not), one caption per fixed window
of each file (`--window-seconds`, default 10 s: the captioner's training clips), so a file of any length is
decoded and captioned as a stream in the memory of one batch of windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from blat_core.app.cli.common import (
    AudioFolder,
    UsageError,
    device_of,
    positive_int,
    positive_number,
    probability,
    write_rows,
)
from blat_core.models.captioner.inference import TAG_THRESHOLD


def add_parser(add, audio_options) -> None:
    sub = add("caption", run, "caption audio files with a trained captioner (tag-guided or not)")
    sub.add_argument("audio_dir", help="folder of audio files")
    sub.add_argument("--captioner", required=True, help="captioner folder (e.g. data/models/captioner_tags)")
    sub.add_argument("--tagger", required=True, help="the tagger folder whose frame features the captioner was "
                     "trained on (data/models/tagger); it also predicts the tags when --tags is not given")  # fmt: skip
    sub.add_argument("--tags", help="AudioSet tags for every file, names or mids separated by ';' (default: predicted)")
    sub.add_argument("--threshold", type=probability, default=TAG_THRESHOLD,
                     help=f"tag probability threshold (default {TAG_THRESHOLD}; at least the top tag is always used)")
    sub.add_argument("--beam", type=positive_int, help="beam width (default: the captioner's own, from its params)")
    sub.add_argument("--max-tokens", type=positive_int, help="longest caption in words (default: the captioner's own)")
    sub.add_argument("--batch-size", type=positive_int, default=16, help="windows per batch (default 16)")
    sub.add_argument("--window-seconds", type=positive_number, default=10.0,
                     help="a file longer than this gets one caption per window: 0-10 s, 10-20 s, …, and the last "
                     "window ending with the file (CSV columns start, end; default 10)")  # fmt: skip
    sub.add_argument("--out", help="CSV to write (default: standard output)")
    sub.add_argument("--device", help="cpu, cuda, … (default: CUDA when present)")


def run(args) -> None:
    from blat_core.data.audio import AudioError, stream_clip
    from blat_core.models.audio.encoder import load_audio_encoder
    from blat_core.models.captioner.inference import caption_frames
    from blat_core.models.captioner.io import load_captioner
    from blat_core.models.checkpoints import CheckpointError
    from blat_core.models.inference import timed_windows

    device = device_of(args.device)
    for folder, kind in ((args.captioner, "captioner.json"), (args.tagger, "tagger.json")):
        if not (Path(folder) / kind).is_file():
            raise UsageError(f"{folder} has no {kind}: give the model folder a `captioner@…` / `tagger` stage wrote")
    try:
        captioner = load_captioner(args.captioner, device)
        tower, tower_meta = load_audio_encoder(args.tagger)
    except CheckpointError as error:
        raise UsageError(str(error)) from error
    tower.to(device)
    uses_tags = captioner.model.tags is not None
    mids = _tag_mids(args.tags, captioner.classes) if args.tags else None
    folder = AudioFolder.scan(args.audio_dir)
    names = dict(captioner.classes)
    rate = tower.sample_rate
    rows, pending, failed = [], [], set()

    def caption_pending() -> None:
        frames, tag_lists = frames_and_tags(tower, tower_meta, [w for *_, w in pending], uses_tags, mids,
                                             args.threshold, device)  # fmt: skip
        captions, _ = caption_frames(captioner, frames, tag_lists, args.beam or captioner.beam,
                                     args.max_tokens or captioner.max_tokens, device)  # fmt: skip
        rows.extend([name, c, "; ".join(names.get(m, m) for m in t), f"{start / rate:.3f}", f"{end / rate:.3f}"]
                    for (name, start, end, _), c, t in zip(pending, captions, tag_lists, strict=True))  # fmt: skip
        pending.clear()

    for path in folder.progress("captioning"):
        name = str(path.relative_to(folder.root))
        try:
            for start, wave in timed_windows(stream_clip(str(path), rate), int(args.window_seconds * rate)):
                pending.append((name, start, start + len(wave), wave))
                if len(pending) == args.batch_size:
                    caption_pending()
        except AudioError as error:  # a file that fails half-way: none of its windows is reported
            failed.add(name)
            pending[:] = [item for item in pending if item[0] != name]
            folder.skip(path, error.reason, error.detail)
    if pending:
        caption_pending()
    rows = [row for row in rows if row[0] not in failed]
    files = len({row[0] for row in rows})
    folder.require_some(files)
    write_rows(args.out, ["path", "caption", "tags", "start", "end"], rows)
    print(f"captioned {files} files ({len(rows)} windows) -> {args.out or 'stdout'}; {folder.summary()}")


def _tag_mids(text: str, classes: list[tuple[str, str]]) -> list[str]:
    by_name = {name.lower(): mid for mid, name in classes} | {mid.lower(): mid for mid, _ in classes}
    mids = []
    for tag in (t.strip() for t in text.split(";") if t.strip()):
        if tag.lower() not in by_name:
            raise UsageError(f"unknown tag {tag!r}: use the captioner's AudioSet names or mids, separated by ';'")
        mids.append(by_name[tag.lower()])
    return mids


@torch.no_grad()
def frames_and_tags(tower, meta, waves, uses_tags, mids, threshold, device):
    from blat_core import compute
    from blat_core.data import batching

    wave, lengths, _ = batching.pad_collate([(torch.from_numpy(w), k) for k, w in enumerate(waves)])
    wave, lengths = batching.to_device_float(wave, device), lengths.to(device)
    frame_lengths = tower.frame_lengths(lengths)
    with compute.autocast(device):
        frames = tower.forward_frames(wave, lengths)
        # The tag logits from the same frames (eval mode: forward() = head(pool(frames)), no second pass).
        logits = tower.head(tower.pool(frames, frame_lengths)) if uses_tags and mids is None else None
    frames = frames.to(torch.float16).float().cpu().numpy()
    counts = frame_lengths.tolist()
    arrays = [frames[row, : counts[row]] for row in range(len(waves))]
    if not uses_tags:
        return arrays, [[] for _ in waves]
    if mids is not None:
        return arrays, [list(mids) for _ in waves]
    classes = [mid for mid, _ in meta["classes"]]
    probabilities = torch.sigmoid(logits.float()).cpu().numpy()
    tags = [[classes[j] for j in np.flatnonzero(p >= threshold)] or [classes[int(p.argmax())]] for p in probabilities]
    return arrays, tags
