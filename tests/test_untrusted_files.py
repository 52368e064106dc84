"""Files other people send (model folders and indexes through DVC remotes, text towers, labels files) and
odd options: nothing runs a folder's own Python, nothing loads from outside a model folder, nothing is cast
silently, and every malformed file or option is one line on stderr with exit status 2, never a traceback."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file

from blat_core.app import cli
from blat_core.models.checkpoints import CheckpointError
from tests.conftest import ROOT
from tests.helpers.tiny_models import make_models


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Tiny models, a folder of three clips and its index."""
    root = tmp_path_factory.mktemp("untrusted")
    models = make_models(root / "models")
    audio = root / "audio"
    audio.mkdir()
    for i in range(3):
        sf.write(audio / f"c{i}.wav", (0.2 * np.sin(np.arange(16000) * (0.02 + 0.01 * i))).astype(np.float32), 16000)
    assert cli.main(["embed", str(audio), "--model", str(models / "blat"), "--out", str(root / "index.parquet")]) == 0
    return {"root": root, "models": models, "audio": audio, "index": root / "index.parquet"}


def one_line_error(capsys, argv: list, expected: str) -> None:
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, (argv, code, err)


# ---------------------------------------------------------------- text towers that want to run code
def _custom_code_folder(folder: Path, marker: Path) -> Path:
    """A transformers folder asking for its own classes (auto_map), whose module writes `marker` when run."""
    folder.mkdir()
    code = f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
    code += ("from transformers import BertConfig, BertModel\nclass EvilConfig(BertConfig):\n    model_type = 'evil'\n"
             "class EvilModel(BertModel):\n    config_class = EvilConfig\n")  # fmt: skip
    (folder / "evil.py").write_text(code)
    config = {"model_type": "evil", "architectures": ["EvilModel"], "vocab_size": 30522, "hidden_size": 32,
              "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
              "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_a_text_folder_never_runs_its_own_code(setup, tmp_path, monkeypatch):
    """Even when the user would answer transformers' "run this code?" prompt with y, nothing runs: the loaders
    pass trust_remote_code=False and refuse the folder with a message."""
    from blat_core.models.text.encoder import BertTextEncoder, Tokenizer

    marker = tmp_path / "ran.txt"
    folder = _custom_code_folder(tmp_path / "evil_text", marker)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        source = setup["models"] / "text_src" / name
        if source.is_file():
            shutil.copy(source, folder / name)
    monkeypatch.setattr("builtins.input", lambda *a, **k: "y")
    for load in (lambda: BertTextEncoder(str(folder), pretrained=False), lambda: BertTextEncoder(str(folder)),
                 lambda: Tokenizer(folder, 30)):  # fmt: skip
        with pytest.raises((CheckpointError, ValueError), match="own Python code|trust_remote_code"):
            load()
    assert not marker.exists()


def test_every_transformers_loader_passes_trust_remote_code_false():
    """Static: each from_pretrained / from_config / SentenceTransformer call in the library says
    trust_remote_code=False, so a new loader cannot forget it."""
    unsafe = []
    for path in sorted((ROOT / "blat_core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in ("from_pretrained", "from_config", "SentenceTransformer"):
                    flags = {k.arg: k.value for k in node.keywords}
                    value = flags.get("trust_remote_code")
                    if not (isinstance(value, ast.Constant) and value.value is False):
                        unsafe.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert unsafe == []


# ---------------------------------------------------------------- model folders
def _copy_model(setup, tmp_path, name="m") -> Path:
    folder = tmp_path / name
    shutil.copytree(setup["models"] / "blat", folder)
    return folder


def _sidecar(folder: Path, change) -> None:
    sidecar = json.loads((folder / "blat.json").read_text())
    change(sidecar)
    (folder / "blat.json").write_text(json.dumps(sidecar))


def test_a_sidecar_cannot_point_outside_the_model_folder(setup, tmp_path, capsys):
    for bad in (str((setup["models"] / "blat" / "text").resolve()), "../blat/text", "text/../../blat/text"):
        folder = _copy_model(setup, tmp_path, f"m{abs(hash(bad))}")
        _sidecar(folder, lambda s, bad=bad: s["config"]["text"].update(folder=bad))
        one_line_error(capsys, ["search", "dog", "--index", setup["index"], "--model", folder], repr(bad))


@pytest.mark.parametrize("dtype", [torch.int8, torch.float64, torch.float16])
def test_weights_of_another_dtype_are_refused_not_cast(setup, tmp_path, capsys, dtype):
    folder = _copy_model(setup, tmp_path)
    weights = load_file(str(folder / "blat.safetensors"))
    key = next(k for k, v in weights.items() if v.is_floating_point())
    weights[key] = weights[key].to(dtype)
    save_file(weights, str(folder / "blat.safetensors"))
    one_line_error(capsys, ["embed", setup["audio"], "--model", folder, "--out", tmp_path / "x.parquet"],
                   f"key {key!r} is {str(dtype).removeprefix('torch.')}, the model expects float32")  # fmt: skip


def _malformed_folders(setup, tmp_path) -> dict[str, Path]:
    """Fourteen ways a model folder can be broken (as a truncated copy or a hand edit leaves it)."""
    made = {}

    def variant(name, change):
        folder = _copy_model(setup, tmp_path, name)
        change(folder)
        made[name] = folder

    variant("sidecar_not_json", lambda f: (f / "blat.json").write_text("{not json"))
    variant("sidecar_not_utf8", lambda f: (f / "blat.json").write_bytes(b"\xff\xfe{}"))
    variant("sidecar_a_list", lambda f: (f / "blat.json").write_text("[1, 2]"))
    variant("sidecar_other_kind", lambda f: _sidecar(f, lambda s: s.update(kind="captioner")))
    variant("no_config", lambda f: _sidecar(f, lambda s: s.pop("config")))
    variant("config_a_string", lambda f: _sidecar(f, lambda s: s.update(config="cnn14")))
    variant("no_text_section", lambda f: _sidecar(f, lambda s: s["config"].pop("text")))
    variant("unknown_audio_tower", lambda f: _sidecar(f, lambda s: s["config"]["audio"].update(name="resnet")))
    variant("embed_dim_a_string", lambda f: _sidecar(f, lambda s: s["config"].update(embed_dim="wide")))
    variant("weights_missing", lambda f: (f / "blat.safetensors").unlink())
    variant("weights_truncated", lambda f: (f / "blat.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{"))
    variant("text_config_missing", lambda f: (f / "text" / "config.json").unlink())
    variant("text_config_not_json", lambda f: (f / "text" / "config.json").write_text("{oops"))
    variant("tokenizer_missing", lambda f: [p.unlink() for p in (f / "text").iterdir() if p.name != "config.json"])
    return made


def test_malformed_model_folders_are_one_line(setup, tmp_path, capsys):
    folders = _malformed_folders(setup, tmp_path)
    assert len(folders) == 14
    for name, folder in folders.items():
        code = cli.main(["embed", str(setup["audio"]), "--model", str(folder), "--out", str(tmp_path / "x.parquet")])
        err = capsys.readouterr().err
        assert code == 2 and str(folder) in err and len(err.strip().splitlines()) == 1, (name, code, err)


# ---------------------------------------------------------------- index files
def _write_index(path: Path, table: pa.Table, meta) -> Path:
    metadata = {} if meta is None else {"blat": meta if isinstance(meta, (str, bytes)) else json.dumps(meta)}
    pq.write_table(table.replace_schema_metadata(metadata), path)
    return path


def test_malformed_index_files_are_one_line(setup, tmp_path, capsys):
    good = pq.read_table(setup["index"])
    meta = json.loads(good.schema.metadata[b"blat"])
    embedding = good.column("embedding")
    flat = np.asarray(embedding.combine_chunks().flatten())
    nan = flat.copy()
    nan[3] = np.nan
    width = embedding.type.list_size
    variants = {
        "not_parquet": None,
        "metadata_not_json": (good, "{nope"),
        "metadata_a_list": (good, [1]),
        "no_model": (good, {k: v for k, v in meta.items() if k != "model"}),
        "model_a_number": (good, {**meta, "model": 3}),
        "window_zero": (good, {**meta, "window_seconds": 0}),
        "no_path_column": (good.drop(["path"]), meta),
        "path_numbers": (good.set_column(0, "path", pa.array([1, 2, 3])), meta),
        "embedding_strings": (good.set_column(good.schema.get_field_index("embedding"), "embedding",
                                              pa.array(["a", "b", "c"])), meta),  # fmt: skip
        "embedding_nan": (good.set_column(good.schema.get_field_index("embedding"), "embedding",
                                          pa.FixedSizeListArray.from_arrays(pa.array(nan), width)), meta),  # fmt: skip
        "no_rows": (good.slice(0, 0), meta),
    }
    for name, spec in variants.items():
        path = tmp_path / f"{name}.parquet"
        if spec is None:
            path.write_bytes(b"PAR1 not really")
        else:
            _write_index(path, *spec)
        for argv in (["search", "dog", "--index", path], ["serve", "--index", path, "--port", "0"]):
            code = cli.main([str(a) for a in argv])
            err = capsys.readouterr().err
            assert code == 2 and len(err.strip().splitlines()) == 1 and str(path) in err, (name, argv[0], code, err)


# ---------------------------------------------------------------- options
def test_odd_options_are_one_line(setup, tmp_path, capsys):
    models, audio, index = setup["models"] / "blat", setup["audio"], setup["index"]
    embed = ["embed", audio, "--model", models, "--out", tmp_path / "x.parquet"]
    for value in ("0", "-1", "nan", "inf", "ten"):
        one_line_error(capsys, [*embed, "--window-seconds", value], "--window-seconds")
    one_line_error(capsys, [*embed, "--batch-size", "0"], "--batch-size: must be at least 1")
    for k in ("-1", "0"):
        one_line_error(capsys, ["search", "dog", "--index", index, "-k", k], "-k: must be at least 1")
    one_line_error(capsys, [*embed, "--device", "nosuch"], "--device 'nosuch' is not a device")
    if not torch.cuda.is_available():
        one_line_error(capsys, [*embed, "--device", "cuda"], "CUDA device(s)")
    labels = tmp_path / "labels.txt"
    labels.write_bytes("dog\nca\xefe\n".encode("latin-1"))
    one_line_error(capsys, ["classify", audio, "--labels", labels, "--model", models],
                   "is not UTF-8 text (byte 6, line 2)")  # fmt: skip
    one_line_error(capsys, ["caption", audio, "--captioner", setup["models"] / "captioner", "--tagger",
                            setup["models"] / "tagger", "--threshold", "1.5"], "between 0 and 1")  # fmt: skip


def test_search_k_gives_exactly_k_results(setup, capsys):
    """`-k 2` prints 2 results; the index has 3, and -k larger than the index prints all 3."""
    assert cli.main(["search", "dog", "--index", str(setup["index"]), "-k", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 2
    assert cli.main(["search", "dog", "--index", str(setup["index"]), "-k", "9"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 3


def test_a_released_bert_folder_loads_silently_and_a_damaged_one_fails(tmp_path, capfd):
    """A BERT folder with its pooler and pre-training heads (as released) loads with no transformers LOAD REPORT
    on the console; a weight the config has no place for, or a missing one, fails naming it."""
    from transformers import BertConfig, BertForPreTraining

    from blat_core.models.text.encoder import load_pretrained_bert

    folder = tmp_path / "bert"
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64)  # fmt: skip
    BertForPreTraining(config).save_pretrained(str(folder))  # bert.* + cls.* + pooler, like released checkpoints
    capfd.readouterr()
    model = load_pretrained_bert(folder)
    said = capfd.readouterr()
    assert "LOAD REPORT" not in said.out + said.err and "UNEXPECTED" not in said.out + said.err
    assert model.config.hidden_size == 32 and getattr(model, "pooler", None) is None
    weights = load_file(str(folder / "model.safetensors"))
    for change, expected in ((lambda w: w.update({"bert.encoder.layer.5.output.dense.weight": torch.zeros(2)}),
                              "unexpected"),
                             (lambda w: w.pop("bert.encoder.layer.1.output.dense.weight"), "missing")):  # fmt: skip
        damaged = dict(weights)
        change(damaged)
        save_file(damaged, str(folder / "model.safetensors"), metadata={"format": "pt"})
        with pytest.raises(CheckpointError, match=expected):
            load_pretrained_bert(folder)
