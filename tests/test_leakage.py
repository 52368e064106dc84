"""The leakage gate: a clip in any evaluation split, of its own dataset or of another it overlaps, is never
trained on, in any stage. An AudioCaps *training* clip that is also a VGGSound *test* clip (same YouTube
video) is prepared for real, then every training reader is asked for its training clips: the tagger, both
captioners of Table 3 and Table 4's, synthesis and stage 1, stage 2 / real-only / retrieval fine-tuning, and
the linear probe / fine-tuning of the classification sets. One gate serves them all
(`PreparedDataset.training_rows`), and no training module reads the manifest around it."""

from __future__ import annotations

import ast
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from blat_core.data.prepare import prepare_dataset
from blat_core.data.prepared import PreparedDataset
from tests.conftest import ROOT, joins_for, prepare_params_for


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory, tiny_corpus, prepared):
    """(prepared folders, the flagged rows per dataset): VGGSound's test list gains the YouTube ids of an
    AudioCaps training clip and of an AudioSet balanced-training clip (the split AudioSet's linear probe and
    fine-tuning train on), both trainable so far, as if those videos were also VGGSound test clips."""
    root = tmp_path_factory.mktemp("leak") / "demo"
    for name in ("audiocaps", "audioset", "vggsound"):
        shutil.copytree(tiny_corpus / name, root / name, symlinks=True)
    params = prepare_params_for(root)

    def trainable_video(name: str, split: str) -> str:
        return next(r["youtube_id"] for r in PreparedDataset(prepared[name][0]).rows(split) if r["trainable"])

    with (params.datasets["vggsound"].meta_dir / "vggsound.csv").open("a") as handle:
        for youtube_id in (trainable_video("audiocaps", "train"), trainable_video("audioset", "balanced_train")):
            handle.write(f"{youtube_id},0,dog barking,test\n")  # metadata only: the overlap is by video
    folders = {}
    for name in ("audiocaps", "audioset"):
        folders[name] = root.parent / "prepared" / name
        folders[name].mkdir(parents=True)
        prepare_dataset(name, params, joins_for(name, params), folders[name], workers=1)
    flagged = {name: [r for r in PreparedDataset(folders[name]).rows() if r["eval_overlap"] == ["vggsound/test"]]
               for name in folders}  # fmt: skip
    return folders, flagged


def test_prepare_flags_the_overlapping_training_clip(overlapping):
    folders, flagged = overlapping
    assert flagged["audiocaps"]
    for clip in flagged["audiocaps"]:
        assert clip["split"] == "train" and not clip["trainable"] and clip["eval_overlap"] == ["vggsound/test"]
    assert flagged["audioset"] and all(not r["trainable"] for r in flagged["audioset"])
    assert "balanced_train" in {r["split"] for r in flagged["audioset"]}
    prepared = PreparedDataset(folders["audiocaps"])
    assert clip["audio_id"] not in {r["audio_id"] for r in prepared.training_rows("train")}
    assert clip["audio_id"] in {r["audio_id"] for r in prepared.rows("train")}  # still there, for scoring


class _Frames:
    """FrameFeatures' interface over every clip of a prepared set (zeros): the readers need only `frames`."""

    def __init__(self, prepared: PreparedDataset):
        self.ids = list(prepared.ids)

    def frames(self, audio_id: str) -> np.ndarray:
        return np.zeros((3, 8), dtype=np.float16)


def test_no_training_reader_sees_the_clip(overlapping, monkeypatch, tmp_path):
    from blat_core.bootstrap.synthesis import select_clips
    from blat_core.data.pairs import caption_pairs, synthetic_pairs
    from blat_core.data.prepared import read_classes
    from blat_core.eval.tasks import captioning as table4
    from blat_core.train import captioner, tagger
    from blat_core.train.tagger import TaggerParams

    folders, flagged = overlapping
    held_audiocaps = {r["audio_id"] for r in flagged["audiocaps"]}
    held_audioset = {r["audio_id"] for r in flagged["audioset"]}
    audiocaps, audioset = PreparedDataset(folders["audiocaps"]), PreparedDataset(folders["audioset"])
    classes = read_classes(folders["audioset"])

    # captioner@tags|notags (Table 3): the training split through the gate, validation and test as they are.
    train = captioner.load_split(audiocaps, _Frames(audiocaps), classes, "train", training=True)
    assert train.ids and not held_audiocaps & set(train.ids)
    assert captioner.load_split(audiocaps, _Frames(audiocaps), classes, "test", training=False).ids

    # evaluate@captioning (Table 4): the same, with the tower's frames.
    monkeypatch.setattr(table4, "frame_arrays", lambda tower, prepared, ids, *a: [np.zeros((3, 8))] * len(ids))
    data = table4.caption_data(audiocaps, "train", None, 4, "cpu", training=True)
    assert data.ids and not held_audiocaps & set(data.ids)

    # pretrain@stage2 / @realonly and evaluate@retrieval_finetune: the real captions.
    pairs = caption_pairs([folders["audiocaps"]])
    assert pairs.items and not held_audiocaps & {audio_id for _, audio_id, _ in pairs.items}

    # synthesize, then pretrain@stage1: the synthetic set never holds it, and a captions file that does is refused.
    selection = select_clips(audioset, audiocaps, _Frames(audioset), ["train"])
    assert selection.audio_ids and not held_audioset & set(selection.audio_ids)
    captions = tmp_path / "captions.parquet"
    pq.write_table(pa.table({"audio_id": sorted(held_audioset), "caption": ["a dog barks"] * len(held_audioset)}),
                   captions)  # fmt: skip
    with pytest.raises(ValueError, match="evaluation clips, which no stage may train on"):
        synthetic_pairs(folders["audioset"], captions)

    # tagger: the ids it trains on.
    seen = []
    monkeypatch.setattr(tagger, "train_tagger", lambda model, params, prepared, ids, *a: seen.extend(ids) or 0)
    params = TaggerParams(checkpoint="", steps=1, batch_size=2, lr=1e-3, weight_decay=0.0, warmup_steps=0,
                          max_seconds=1.0, mixup_alpha=0.0)  # fmt: skip
    from blat_core.models.audio.encoder import AudioEncoderParams

    encoder = AudioEncoderParams(name="cnn14", channels=[4, 8, 16, 32, 64, 64])
    tagger.run_tagger(params, encoder, folders["audioset"], tmp_path / "tagger", None, tmp_path / "scratch", 0, [])
    assert seen and not held_audioset & set(seen)


def test_classification_training_folds_skip_held_out_clips(overlapping):
    """Linear probe and fine-tuning train on evaluation_sets' train masks: a held-out AudioSet training clip is in
    no train mask (it may still be scored where it is a test clip)."""
    from blat_core.data.labelled import labelled_clips

    folders, flagged = overlapping
    data = labelled_clips(PreparedDataset(folders["audioset"]))
    held = np.isin(data.audio_ids, [r["audio_id"] for r in flagged["audioset"]])
    assert held.any()
    for train_mask, _ in data.evaluation_sets():
        assert train_mask.any() and not (train_mask & held).any()


def test_no_training_module_reads_the_manifest_around_the_gate():
    """Only the gate reads the `trainable` column, and training code never asks for plain `rows()`: a new reader
    has to choose training_rows (gated) or evaluation_rows (an evaluation split, refused for training splits)."""
    readers = []
    for path in sorted((ROOT / "blat_core").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        if relative not in ("blat_core/data/prepare.py", "blat_core/data/prepared.py") and '["trainable"]' in text:
            readers.append(f"{relative}: reads the trainable column")
        if relative.startswith("blat_core/train/"):
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "rows":
                    readers.append(f"{relative}:{node.lineno}: calls .rows()")
    assert readers == []


def test_evaluation_rows_refuse_a_training_split(overlapping):
    prepared = PreparedDataset(overlapping[0]["audiocaps"])
    assert prepared.evaluation_rows("test")
    with pytest.raises(ValueError, match="split 'train' holds training clips"):
        prepared.evaluation_rows("train")
