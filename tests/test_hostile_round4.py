"""Hostile input, round 4: a few bytes never take the machine down. A recursive YAML alias ends in one line at
once, an odd sample rate resamples in bounded memory, a huge CSV field is a counted problem, an absurd model
config is one line naming its key."""

from __future__ import annotations

import contextlib
import resource
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CYCLES = {  # legal YAML that PyYAML's own safe_load builds at once as recursive objects
    "sequence": "a: &a [*a]\n",
    "mapping": "a: &a {b: *a}\n",
    "two steps": "a: &a [1, {x: &b [2, *a]}]\n",
    "mapping key path": "x: &k {y: [1, {z: *k}]}\n",
    "deep": "top: &t [[[[[[[[*t]]]]]]]]\n",
}


LOADERS = {  # (imports, the load of the file at sys.argv[1]): only the load is timed
    "guard": ("from blat_core.yaml_input import safe_load", "safe_load(open(sys.argv[1]).read(), sys.argv[1])"),
    "params": ("from blat_core.params import load_params_file", "load_params_file(sys.argv[1])"),
    "macs": ("from pathlib import Path; from blat_core.data.datasets import macs",
             "macs.read(Path(sys.argv[1]).parent, '{filename}', {})"),
}
TIMED = ("import sys, time; {imports}; started = time.perf_counter()\ntry:\n    {load}\nfinally:\n"
         "    print(f'seconds {{time.perf_counter() - started:.4f}}', file=sys.stderr)")


def _load_in_child(path, loader: str) -> tuple[subprocess.CompletedProcess, float]:
    """(the child's result, seconds the load took) of one loader run in a child with a deadline: a loader that
    loops forever fails the test instead of hanging the suite."""
    try:
        imports, load = LOADERS[loader]
        result = subprocess.run([sys.executable, "-c", TIMED.format(imports=imports, load=load), str(path)], cwd=ROOT,
                                capture_output=True, text=True, timeout=20)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"the {loader} loader was still running after 20 s on {path.read_text()!r}")
    seconds = [float(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("seconds ")]
    return result, seconds[-1]


@pytest.mark.parametrize("shape", list(CYCLES))
def test_a_self_referencing_yaml_alias_is_refused_at_once(shape, tmp_path):
    """A node that holds an alias of itself (a cycle of any length, through sequences or mappings) is one clear
    error in well under a second, from the bare guard and from the params and MACS.yaml loaders."""
    for loader, name in (("guard", "any.yaml"), ("params", "params.yaml"), ("macs", "MACS.yaml")):
        (tmp_path / name).write_text(CYCLES[shape])
        result, seconds = _load_in_child(tmp_path / name, loader)
        said = [line for line in result.stderr.splitlines() if not line.startswith("seconds ")]
        assert result.returncode != 0 and "of itself" in said[-1], result.stderr[-500:]
        assert seconds < 0.2, (loader, seconds)


def test_shared_aliases_without_a_cycle_still_load():
    """A value used twice (a diamond, not a cycle) is ordinary YAML and reads as before."""
    from blat_core import yaml_input

    text = "a: &a [1]\nb: [*a, *a]\nc: &c {d: *a}\ne: *c\n"
    assert yaml_input.safe_load(text, "ok.yaml") == {"a": [1], "b": [[1], [1]], "c": {"d": [1]}, "e": {"d": [1]}}


# ---------------------------------------------------------------- odd sample rates
ODD_RATES = (44101, 47999, 96001, 8001)  # gcd-reduced kernels of 32,000 × 44,119 … floats in torchaudio
RESAMPLE_IN_A_CAGE = """
import resource, sys
import numpy as np, soundfile as sf, torch, torchaudio
from blat_core.data.audio import load_clip, stream_clip
from tests.test_hostile_round4 import address_space_cap
# 1.5 GiB more address space at most: the whole-kernel resampler needs 4 to 20 GB for these rates, so it fails
# here instead of taking the machine down.
address_space_cap(3 * 2**29).__enter__()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rng = np.random.default_rng(0)
for rate in map(int, sys.argv[1:]):
    path = f'odd_{rate}.wav'
    sf.write(path, (0.2 * rng.standard_normal(rate // 2)).astype(np.float32), rate, subtype='PCM_16')
    whole, reason, detail = load_clip(path, 32000, float('-inf'))
    streamed = np.concatenate(list(stream_clip(path, 32000)))
    assert whole is not None and len(whole) == -(-(rate // 2) * 32000 // rate), (rate, reason, detail)
    assert np.abs(whole.astype(np.int32) - streamed).max() <= 1
print('grew_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_an_odd_sample_rate_resamples_in_bounded_memory(tmp_path):
    """0.5 s WAVs (44 kB) at 44,101, 47,999, 96,001 and 8,001 Hz decode and resample to 32 kHz, whole and
    streamed, in a process allowed 1.5 GiB more address space; its peak grows by under 200 MB."""
    result = subprocess.run([sys.executable, "-c", RESAMPLE_IN_A_CAGE, *map(str, ODD_RATES)], cwd=tmp_path,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-1500:]
    grew = int(result.stdout.split("grew_kb")[1])
    assert grew < 200_000, grew


@pytest.mark.parametrize("rates", [(44100, 32000), (1003, 16000), (8001, 16000), (16000, 44100), (3001, 8000)])
def test_the_bounded_resampler_is_torchaudios_filter(rates):
    """SincResampler evaluates torchaudio's own windowed-sinc kernel (computed by torchaudio in float64) per output:
    the same length and the same values within float32 rounding."""
    import numpy as np
    import torch
    import torchaudio

    from blat_core.data.audio import SincResampler

    source, target = rates
    wave = 0.3 * np.random.default_rng(0).standard_normal(int(source * 1.3))
    reference = torchaudio.transforms.Resample(source, target, dtype=torch.float64)(torch.from_numpy(wave)).numpy()
    ours = SincResampler(source, target).resample(wave.astype(np.float32))
    assert ours.shape == reference.shape and ours.dtype == np.float32
    assert np.abs(ours - reference).max() < 1e-6


@contextlib.contextmanager
def address_space_cap(extra_bytes: int):
    """This process may map `extra_bytes` more while inside: an allocation past it fails (MemoryError or torch's
    RuntimeError) instead of the kernel's OOM killer ending the test run, should a bound break."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        size = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + extra_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def test_resamplers_kept_are_few_and_small():
    """A server meeting many rates keeps at most CACHED_KERNELS torchaudio kernels, each at most KERNEL_LIMIT floats;
    a pair whose kernel would be larger gets the bounded resampler."""
    from blat_core.data import audio

    with address_space_cap(3 * 2**29):
        for rate in range(8000, 8000 + 40 * 25, 25):
            assert audio.resampler(rate, 16000) is not None
        assert audio._torchaudio_resampler.cache_info().currsize <= audio.CACHED_KERNELS
        assert isinstance(audio.resampler(44101, 32000), audio.SincResampler)
        assert not isinstance(audio.resampler(44100, 32000), audio.SincResampler)  # common rates: torchaudio's


@pytest.mark.parametrize("rate", [1, 999, 1_000_001, 2**31 - 1])
def test_a_sample_rate_no_recorder_writes_is_one_line(rate, tmp_path):
    import soundfile as sf

    from blat_core.data.audio import load_clip

    path = tmp_path / "forged.wav"
    sf.write(path, [0.1, -0.1, 0.2] * 100, rate, subtype="PCM_16")
    with address_space_cap(3 * 2**29):
        wave, reason, detail = load_clip(str(path), 32000, float("-inf"))
    assert wave is None and reason == "unreadable_audio" and f"sample rate {rate} Hz, outside" in detail


# ---------------------------------------------------------------- long files through caption and the library
CAPTION_GROWTH = """
import resource, sys
from pathlib import Path
import numpy as np, soundfile as sf
from blat_core.app import cli
from tests.helpers.tiny_models import make_models

work = Path(sys.argv[1])
models = make_models(work / 'models')
for name, seconds in (('short', 1), ('long', 180)):  # 48 kHz stereo FLAC, written a minute at a time
    (work / name).mkdir()
    with sf.SoundFile(work / name / f'{name}.flac', 'w', 48000, 2, subtype='PCM_16') as out:
        for start in range(0, seconds, 60):
            t = np.arange(start * 48000, min(seconds, start + 60) * 48000) / 48000
            tone = 0.2 * np.sin(2 * np.pi * 440 * t)
            out.write(np.stack([tone, 0.5 * tone], 1).astype(np.float32))
def caption(name):
    assert cli.main(['caption', str(work / name), '--captioner', str(models / 'captioner'), '--tagger',
                     str(models / 'tagger'), '--out', str(work / f'{name}.csv'), '--batch-size', '2']) == 0
caption('short')  # imports, model loading, one batch: the process's own size
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
caption('long')
print('grew_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_blat_caption_streams_a_long_file(tmp_path):
    """`blat caption` on 3 minutes of 48 kHz stereo FLAC, two windows per batch, grows the process by under 50 MB
    (a whole-file decode grew it by 142 MB), and writes one caption per 10 s window."""
    import csv

    result = subprocess.run([sys.executable, "-c", CAPTION_GROWTH, str(tmp_path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-1500:]
    grew = int(result.stdout.split("grew_kb")[1])
    assert grew < 50_000, grew
    rows = list(csv.DictReader((tmp_path / "long.csv").open()))
    assert len(rows) == 18 and rows[-1]["end"] == "180.000"


def test_the_library_readers_are_bounded(tmp_path, monkeypatch):
    """`embed_files` streams each file window by window (the whole-file reader is never called), and
    `read_audio` stops at its cap (`max_seconds`, an hour by default) with a ValueError naming the file."""
    import numpy as np
    import soundfile as sf
    import torch

    from blat_core.data import audio
    from blat_core.models import inference
    from tests.helpers.tiny_biencoder import make_text_folder, tiny_biencoder

    path = tmp_path / "long.flac"
    sf.write(path, (0.1 * np.random.default_rng(0).standard_normal((48000 * 25, 2))).astype(np.float32), 48000)
    torch.manual_seed(0)
    model = tiny_biencoder(make_text_folder(tmp_path / "text")).eval()
    expected = inference.embed_files(model, [path])

    def whole_file(*args, **kwargs):
        raise AssertionError("a whole file was decoded")

    monkeypatch.setattr(audio, "load_clip", whole_file)
    monkeypatch.setattr(audio, "BLOCK_FRAMES", 4096)  # the stream really is in pieces
    streamed = inference.embed_files(model, [path])
    assert torch.allclose(streamed, expected, atol=1e-5)
    assert len(inference.read_audio(path, 16000)) == 16000 * 25
    with pytest.raises(ValueError, match="long.flac: too_long .*max_seconds=10"):
        inference.read_audio(path, 16000, max_seconds=10)
    assert inference.READ_SECONDS == 3600.0


# ---------------------------------------------------------------- metadata CSV with a huge field
HUGE_FIELD = """
import resource, sys
from pathlib import Path
from blat_core.data.datasets import esc50
meta = Path(sys.argv[1])
header = 'filename,fold,target,category,esc10,src_file,take\\n'
good = '1-100032-A-0.wav,1,0,dog,True,100032,A\\n'
with open(meta / 'esc50.csv', 'w') as out:  # rows 2, 4 and 6 are fine; 3 holds 100 MB, 5 a 200 kB field
    out.write(header + good + '1-2-A-0.wav,1,0,' + 'd' * 100_000_000 + ',True,2,A\\n' + good.replace('0032', '0033'))
    out.write('1-3-A-0.wav,1,0,"' + 'e' * 200_000 + '",True,3,A\\n' + good.replace('0032', '0034'))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = esc50.read(meta, '{filename}', {})
print('grew_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
print('rows', [row.ref for row in result.rows], 'read', result.rows_read)
for problem in result.problems:
    print('problem', problem.ref, problem.reason, problem.detail)
"""


def test_a_metadata_row_with_a_huge_field_is_a_counted_problem(tmp_path):
    """An ESC-50 CSV with a 100 MB field in one row and a 200 kB quoted field in another: both rows are
    `malformed_row` problems naming their lines, the rows around them are read, and the reader's memory grows
    by under 20 MB (reading it whole grew it by 300 MB, then csv raised a traceback)."""
    result = subprocess.run([sys.executable, "-c", HUGE_FIELD, str(tmp_path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-1500:]
    out = result.stdout
    assert "rows ['esc50.csv:2', 'esc50.csv:4', 'esc50.csv:6'] read 5" in out, out
    assert "problem esc50.csv:3 malformed_row a line longer than 1,048,576 characters" in out, out
    assert "problem esc50.csv:5 malformed_row field larger than field limit (131072)" in out, out
    assert int(out.split("grew_kb")[1].split()[0]) < 20_000, out


def test_a_huge_field_where_no_row_may_be_skipped_is_one_line(tmp_path):
    """A table read whole (AudioSet's class list) with a huge field stops with one line naming the file and line."""
    from blat_core.data.datasets.audioset import read_class_labels
    from blat_core.data.datasets.common import MetadataError

    (tmp_path / "class_labels_indices.csv").write_text("index,mid,display_name\n0,/m/09x0r," + "s" * 300_000 + "\n")
    with pytest.raises(MetadataError, match=r"class_labels_indices.csv:2: field larger than field limit"):
        read_class_labels(tmp_path)


# ---------------------------------------------------------------- absurd model configs
@pytest.mark.parametrize("value", [2**40, -1])
def test_a_model_config_with_an_absurd_size_is_one_line(value, tmp_path, capsys):
    """A model folder (pipeline or exported) whose config gives embed_dim 2**40 or -1, or whose text tower config
    gives an absurd hidden_size, is one line naming the file and key: never an allocation of terabytes or a
    negative-dimension traceback from inside torch."""
    import json

    import numpy as np
    import soundfile as sf

    import blat_core
    from blat_core.app import cli
    from blat_core.models.checkpoints import CheckpointError
    from tests.helpers.tiny_models import make_models

    models = make_models(tmp_path / "models")
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "a.wav", 0.1 * np.ones(16000, np.float32), 16000)
    assert cli.main(["export", str(models / "blat"), "--out", str(tmp_path / "exported")]) == 0
    for folder, sidecar, key in ((models / "blat", "blat.json", "config.embed_dim"),
                                 (tmp_path / "exported", "config.json", "config.embed_dim"),
                                 (models / "blat", "text/config.json", "config.hidden_size")):  # fmt: skip
        original = (folder / sidecar).read_text()
        document = json.loads(original)
        target = document["config"] if sidecar == "blat.json" else document
        target["hidden_size" if "hidden_size" in key else "embed_dim"] = value
        (folder / sidecar).write_text(json.dumps(document))
        with address_space_cap(3 * 2**29), pytest.raises(CheckpointError, match=rf"{key} is {value}, not a size"):
            blat_core.load_model(folder)
        capsys.readouterr()
        if sidecar != "config.json":
            with address_space_cap(3 * 2**29):
                code = cli.main(["embed", str(tmp_path / "audio"), "--model", str(folder), "--out",
                                 str(tmp_path / "i.parquet")])  # fmt: skip
            err = capsys.readouterr().err
            assert code == 2 and len(err.strip().splitlines()) == 1 and f"{key} is {value}" in err, err
        (folder / sidecar).write_text(original)
