"""Datasets as people download them: wildcard audio patterns resolved against the scan's listing,
datasets configured by one root, and real recordings (not procedural sound) through `scan` + `prepare`."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from blat_core.data.resolve import ListingIndex, PatternError, check_pattern
from blat_core.params import ParamsError, from_dict
from tests.conftest import ROOT, project_params
from tests.helpers import real_audio

LISTING = [
    "balanced_train_segments/Yabc.wav",
    "eval_segments/Y-dash.flac",
    "unbalanced_train_segments/unbalanced_train_segments_part00/Yp0.wav",
    "unbalanced_train_segments/unbalanced_train_segments_part07/Yp7.flac",
    "unbalanced_train_segments/unbalanced_train_segments_part07/Ytwice.wav",
    "unbalanced_train_segments/unbalanced_train_segments_part08/Ytwice.flac",
    "Rain, heavy (2).wav",
]


def test_double_star_matches_any_subfolders_and_none():
    index = ListingIndex(LISTING)
    assert index.matches("unbalanced_train_segments/**/Yp7.*") == [LISTING[3]]
    assert index.matches("balanced_train_segments/**/Yabc.wav") == [LISTING[0]]  # zero sub-folders
    assert index.matches("**/Y-dash.*") == [LISTING[1]]
    assert index.matches("eval_segments/**/Yabc.*") == []  # right name, wrong split folder


def test_star_in_a_folder_name_and_any_extension():
    index = ListingIndex(LISTING)
    assert index.matches("unbalanced_train_segments/unbalanced_train_segments_part*/Yp0.*") == [LISTING[2]]
    assert index.matches("unbalanced_train_segments/*_part0?/Yp0.*") == []  # '?' is literal
    assert index.matches("Rain, heavy (2).*") == [LISTING[6]]  # the stem is literal: commas, parentheses
    assert index.matches("eval_segments/Y-dash.wav") == []  # a fixed extension stays fixed


def test_a_name_matching_two_files_returns_both():
    assert ListingIndex(LISTING).matches("unbalanced_train_segments/**/Ytwice.*") == [LISTING[5], LISTING[4]][::-1]


@pytest.mark.parametrize("pattern", ["{split}/Y*{youtube_id}.wav", "a**/{x}.wav", "{split}/x**y/{x}.*"])
def test_unsupported_wildcards_are_refused(pattern):
    with pytest.raises(PatternError):
        check_pattern(pattern)


def test_a_dataset_needs_a_root_or_both_folders():
    from blat_core.data.prepare import PrepareParams

    section = project_params()["prepare"]
    section["datasets"]["esc50"] = {"meta": "x", "audio_pattern": "{filename}"}
    params = from_dict(PrepareParams, section, "prepare")
    with pytest.raises(ParamsError, match=r"prepare\.datasets\.esc50: set `root`"):
        params.source("esc50")


def test_prepare_does_not_depend_on_the_dataset_folders():
    """DVC would hash every audio file of a folder dep; the scan fingerprint stands in for them."""
    prepare = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["prepare"]["do"]
    assert not [d for d in prepare["deps"] if "${item" in d]
    assert "data/sources/${key}.listing.parquet" in prepare["deps"]


# ---------------------------------------------------------------- real recordings, two layouts
@pytest.fixture(scope="session")
def real_corpus(request, tmp_path_factory) -> Path:
    """The real-recordings corpus, built once and kept in pytest's cache folder between runs (built in a temporary
    folder when the cache is switched off with `-p no:cacheprovider`)."""
    real_audio.require()
    sources = real_audio.recordings()
    key = hashlib.blake2b(
        (real_audio.VERSION + "".join(f"{p.name}:{p.stat().st_size}" for p in sources)).encode(), digest_size=6
    ).hexdigest()
    cache = getattr(request.config, "cache", None)
    cached = (Path(cache.mkdir("real_audio")) if cache else tmp_path_factory.mktemp("real_audio")) / key
    if not (cached / "complete").is_file():
        shutil.rmtree(cached, ignore_errors=True)
        real_audio.build(cached)
        (cached / "complete").write_text("")
    return cached


def run_scan_and_prepare(corpus: Path, tmp_path: Path, datasets: dict) -> dict:
    from stages import prepare as prepare_stage
    from stages import scan as scan_stage

    params = project_params()
    params["prepare"]["datasets"] = datasets
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    sources = tmp_path / "sources"
    scan_stage.main(["--out", str(sources), "--params", str(params_file)])
    metrics = {}
    for name in datasets:
        out, metrics_file = tmp_path / "prepared" / name, tmp_path / f"prepare_{name}.json"
        prepare_stage.main([name, "--source", str(sources / f"{name}.json"), "--listing",
                            str(sources / f"{name}.listing.parquet"), "--out", str(out), "--metrics",
                            str(metrics_file), "--params", str(params_file)])  # fmt: skip
        metrics[name] = yaml.safe_load(metrics_file.read_text())["prepare"][name]
    return metrics


def test_real_recordings_in_the_panns_audioset_layout_and_a_one_root_clotho(real_corpus, tmp_path):
    """AudioSet as the PANNs scripts download it (part folders, WAV and FLAC, stereo, 8-96 kHz, a zero-byte
    and a missing file) configured by one pattern; Clotho configured by its root alone."""
    datasets = {
        "audioset": {"root": str(real_corpus / "audioset"), "meta": "metadata", "audio": "audios",
                     "audio_pattern": "{split}_segments/**/Y{youtube_id}.*"},
        "clotho": {"root": str(real_corpus / "clotho"), "audio_pattern": "{split}/{file_name}"},
    }  # fmt: skip
    metrics = run_scan_and_prepare(real_corpus, tmp_path, datasets)

    expected = real_audio.EXPECTED["audioset"]
    audioset = metrics["audioset"]
    assert audioset["rows_read"] == expected["rows_read"]
    assert audioset["clips"] == expected["clips"]
    assert audioset["skipped"] == expected["skipped"]
    manifest = pq.read_table(tmp_path / "prepared/audioset/manifest.parquet").to_pylist()
    by_split = {}
    for row in manifest:
        by_split[row["split"]] = by_split.get(row["split"], 0) + 1
    assert by_split == expected["by_split"]
    # source_path is the file the pattern found, in its part folder, with its own extension.
    assert sum(r["source_path"].endswith(".flac") for r in manifest) == expected["flac"]
    assert any("/unbalanced_train_segments_part02/Y" in r["source_path"] for r in manifest)
    assert all((real_corpus / "audioset/audios" / r["source_path"]).is_file() for r in manifest)
    with (tmp_path / "prepared/audioset/skipped.csv").open() as handle:
        skipped = {row["reason"]: row["detail"] for row in csv.DictReader(handle)}
    assert "Ytwice_stored.flac" in skipped["ambiguous_audio"] and "Ytwice_stored.wav" in skipped["ambiguous_audio"]
    assert "never_downloaded" in skipped["missing_audio"]

    clotho = metrics["clotho"]
    assert (clotho["rows_read"], clotho["clips"], clotho["skipped"]) == (9, 9, {})
    names = {r["source_path"] for r in pq.read_table(tmp_path / "prepared/clotho/manifest.parquet").to_pylist()}
    assert "development/Rain on a roof, heavy (2).wav" in names and "evaluation/Pots & pans (3).wav" in names
    # The one-root fingerprint hashed the metadata files only (the Latin-1 one included), not the audio.
    fingerprint = yaml.safe_load((tmp_path / "sources/clotho.json").read_text())
    assert sorted(fingerprint["meta"]["files"]) == sorted(
        f"clotho_{kind}_{split}.csv" for kind in ("captions", "metadata")
        for split in ("development", "validation", "evaluation")
    )  # fmt: skip
    assert fingerprint["audio"]["files"] == 9


def test_the_resolution_benchmark_runs(tmp_path):
    """benchmarks/resolve_listing.py at a small size (the 2M-row figure is in docs/real-data.md)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "benchmarks/resolve_listing.py", "--files", "5000"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "resolved 5,000/5,000 rows" in done.stdout
