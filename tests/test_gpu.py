"""The GPU code paths — bf16 autocast, torch.compile, fused Adam, pinned non-blocking transfers, the
pre-training and captioner steps — on a CUDA device (`-m gpu`; skipped without one), and the parts of
them that also run on a CPU, so that CI covers them too.

Self-contained: the text tower's vocabulary and the prepared clips are made here, so the module runs
with torch, transformers, h5py and pyarrow alone (as on a GPU machine's stock image):
`python -m pytest -m gpu tests/test_gpu.py`."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from blat_core import compute
from blat_core.data import batching
from blat_core.data.prepared import PreparedDataset
from blat_core.data.shards import ShardWriter
from blat_core.models.biencoder import ContrastiveLoss
from blat_core.models.captioner.model import Captioner
from blat_core.models.text.encoder import Tokenizer
from blat_core.train import loop
from tests.helpers.tiny_biencoder import tiny_biencoder

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")
CAPTIONS = ["a dog barks twice", "rain falls on a tin roof", "a man speaks while birds sing", "an engine idles"]


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory):
    """A tiny BERT config and a WordPiece vocabulary of the test captions' words."""
    from transformers import BertConfig, BertTokenizerFast

    folder = tmp_path_factory.mktemp("text") / "bert"
    folder.mkdir()
    words = sorted({word for caption in CAPTIONS for word in caption.split()})
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(str(folder))
    BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=64, max_position_embeddings=64).save_pretrained(str(folder))  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A prepared dataset of six 16 kHz clips (0.5 to 2 s) in the pipeline's shard and manifest format."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("prepared")
    rng = np.random.default_rng(1)
    writer = ShardWriter(folder, 2**20, {"sample_rate": 16000})
    ids, places, lengths = [], [], []
    for i, seconds in enumerate((0.5, 1.0, 1.5, 2.0, 0.8, 1.2)):
        wave = (3000 * rng.standard_normal(int(16000 * seconds))).astype(np.int16)
        ids.append(f"clip{i}")
        places.append(writer.add(ids[-1], wave))
        lengths.append(len(wave))
    writer.flush()
    table = pa.table({"audio_id": ids, "shard": [s for s, _ in places], "offset": [o for _, o in places],
                      "num_samples": lengths})  # fmt: skip
    pq.write_table(table.replace_schema_metadata({"blat.dataset": "clips", "blat.sample_rate": "16000"}),
                   folder / "manifest.parquet")  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def model(text_folder):
    torch.manual_seed(0)
    return tiny_biencoder(text_folder).eval()


def _batch(text_folder, seconds=(1.5, 1.0, 0.7, 1.2), rate=16000):
    """A fixed batch: zero-padded int16 waves of several lengths, their lengths, and tokenised captions."""
    rng = np.random.default_rng(0)
    lengths = torch.tensor([int(s * rate) for s in seconds])
    waves = torch.zeros(len(seconds), int(lengths.max()), dtype=torch.int16)
    for row, length in enumerate(lengths.tolist()):
        waves[row, :length] = torch.from_numpy((3000 * rng.standard_normal(length)).astype(np.int16))
    return waves, lengths, Tokenizer(text_folder, 30)(CAPTIONS[: len(seconds)])


def _embeddings(model, text_folder, device, dtype=None):
    waves, lengths, tokens = _batch(text_folder)
    model = model.to(device)
    context = torch.autocast(device.type, dtype=dtype) if dtype else torch.autocast(device.type, enabled=False)
    with torch.no_grad(), context:
        audio = model.encode_audio(batching.to_device_float(waves, device), lengths.to(device))
        text = model.encode_text(tokens["input_ids"].to(device), tokens["attention_mask"].to(device))
    return audio.float().cpu(), text.float().cpu()


def _assert_cosine(a, b, at_least):
    cosine = F.cosine_similarity(a, b, dim=-1)
    assert cosine.min().item() >= at_least, cosine


def _assert_bf16_agrees(model, text_folder, device, at_least):
    """Audio and text embeddings of the fixed batch under bf16 autocast vs fp32, on `device`."""
    audio32, text32 = _embeddings(copy.deepcopy(model), text_folder, device)
    audio16, text16 = _embeddings(copy.deepcopy(model), text_folder, device, torch.bfloat16)
    _assert_cosine(audio16, audio32, at_least)
    _assert_cosine(text16, text32, at_least)


def _step_parts(model, text_folder, device, prepared_folder):
    """One contrastive step through `pretrain.contrastive_step` on 4 prepared clips, fused Adam on CUDA."""
    from blat_core.train.pretrain import StepParts

    dataset = PreparedDataset(prepared_folder)
    ids = dataset.ids[:4]
    waves, lengths, indices = batching.pad_collate(
        [batching.ClipDataset(dataset, ids, 16000)[(i, (0, 0, i))] for i in range(4)]
    )

    class FourCaptions:
        def caption(self, index):
            return CAPTIONS[index]

    optimizer = loop.adam(model.parameters(), 1.0e-3, 0.0, device)
    tokenizer = Tokenizer(text_folder, 30)
    parts = StepParts(forward=model, loss=ContrastiveLoss(), optimizer=optimizer, tokenizer=tokenizer,
                      pairs=FourCaptions(), device=device)  # fmt: skip
    return parts, (waves, lengths, indices)


# ---------------------------------------------------------------- CPU: runs in CI
def test_bf16_autocast_embeddings_agree_with_fp32_on_cpu(model, text_folder):
    """The model runs under bf16 autocast (the front-end keeps the STFT in fp32) and embeds like fp32."""
    _assert_bf16_agrees(model, text_folder, torch.device("cpu"), 0.99)


def test_compiled_audio_tower_matches_eager_on_cpu(model, text_folder):
    """torch.compile of the (tiny) audio tower gives the eager embeddings, padded clips included."""
    waves, lengths, _ = _batch(text_folder)
    tower = copy.deepcopy(model.audio_encoder).eval()
    wave = batching.to_device_float(waves, torch.device("cpu"))
    with torch.no_grad():
        eager = tower.forward_embedding(wave, lengths)
        compiled = torch.compile(tower.forward_embedding)(wave, lengths)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)


def test_contrastive_step_runs_and_moves_the_weights_on_cpu(model, text_folder, clips):
    trained = copy.deepcopy(model).train()
    before = copy.deepcopy(trained.state_dict())
    parts, batch = _step_parts(trained, text_folder, torch.device("cpu"), clips)
    result = pretrain_step(parts, batch)
    assert np.isfinite(float(result["loss"])) and result["batch_size"] == 4
    assert any(not torch.equal(before[k], v) for k, v in trained.state_dict().items())


def pretrain_step(parts, batch):
    from blat_core.train.pretrain import contrastive_step

    return contrastive_step(parts, batch)


def _captioner_step(device):
    """One bf16-autocast (on CUDA) captioner update with a fused (on CUDA) Adam: (loss, weights changed)."""
    torch.manual_seed(0)
    model = Captioner(feature_dim=64, vocab_size=50, num_tags=5, use_tags=True).to(device).train()
    before = copy.deepcopy(model.state_dict())
    optimizer = loop.adam(model.parameters(), 5.0e-4, 1.0e-6, device)
    frames = torch.randn(3, 20, 64, device=device)
    lengths = torch.tensor([20, 12, 7], device=device)
    tags = torch.zeros(3, 5, device=device)
    tags[0, 1] = tags[1, 2] = 1.0  # the third clip has no tags: the mean must not divide by zero
    tokens = torch.randint(4, 50, (3, 9), device=device)
    with compute.autocast(device):
        logits = model(frames, lengths, tags, tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 50).float(), tokens[:, 1:].reshape(-1), label_smoothing=0.1)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    changed = any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    return loss.item(), changed


def test_captioner_step_on_cpu():
    loss, changed = _captioner_step(torch.device("cpu"))
    assert np.isfinite(loss) and changed


def test_int16_transfer_converts_after_the_copy_on_cpu():
    waves = torch.tensor([[-32768, 0, 16384, 32767]], dtype=torch.int16)
    out = batching.to_device_float(waves, torch.device("cpu"))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([[-1.0, 0.0, 0.5, 32767 / 32768]]))


# ---------------------------------------------------------------- CUDA: `pytest -m gpu` on a GPU machine
@pytest.mark.gpu
@needs_cuda
def test_bf16_embeddings_agree_with_fp32_on_gpu(model, text_folder):
    """On the GPU path (compute.autocast: bf16), embeddings of a fixed batch agree with fp32: cosine ≥ 0.999."""
    _assert_bf16_agrees(model, text_folder, torch.device("cuda"), 0.999)


@pytest.mark.gpu
@needs_cuda
def test_compiled_matches_eager_on_gpu(model, text_folder):
    """torch.compile of the audio tower (as BLAT_COMPILE=1 does) agrees with eager, in fp32 and bf16."""
    waves, lengths, _ = _batch(text_folder)
    cuda = torch.device("cuda")
    tower = copy.deepcopy(model.audio_encoder).to(cuda).eval()
    wave, lengths = batching.to_device_float(waves, cuda), lengths.to(cuda)
    compiled = compute.maybe_compile(tower, cuda) if compute.compile_enabled(cuda) else torch.compile(tower)
    with torch.no_grad():
        torch.testing.assert_close(compiled.forward_embedding(wave, lengths), tower.forward_embedding(wave, lengths),
                                   rtol=1e-3, atol=1e-3)  # fmt: skip
        with torch.autocast("cuda", dtype=torch.bfloat16):
            _assert_cosine(compiled.forward_embedding(wave, lengths).float(),
                           tower.forward_embedding(wave, lengths).float(), 0.999)  # fmt: skip


@pytest.mark.gpu
@needs_cuda
def test_fused_adam_pretrain_step_on_gpu(model, text_folder, clips):
    """One pre-training step through pretrain.contrastive_step on CUDA: bf16 autocast, fused Adam, finite."""
    cuda = torch.device("cuda")
    trained = copy.deepcopy(model).to(cuda).train()
    before = {k: v.detach().clone() for k, v in trained.state_dict().items()}
    parts, batch = _step_parts(trained, text_folder, cuda, clips)
    assert parts.optimizer.defaults.get("fused") is True
    result = pretrain_step(parts, batch)
    assert np.isfinite(float(result["loss"]))
    assert any(not torch.equal(before[k], v) for k, v in trained.state_dict().items())


@pytest.mark.gpu
@needs_cuda
def test_captioner_step_on_gpu():
    loss, changed = _captioner_step(torch.device("cuda"))
    assert np.isfinite(loss) and changed


@pytest.mark.gpu
@needs_cuda
def test_pinned_loader_transfer_gives_the_same_batch_on_gpu(clips):
    """The GPU loader (pinned memory, non-blocking int16 copy, conversion on the device) gives exactly the
    batch the CPU path gives."""
    dataset = PreparedDataset(clips)
    ids = dataset.ids[:6]
    plan = batching.eval_batches(len(ids), 3)
    clips = batching.ClipDataset(dataset, ids, None)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    for (gpu_waves, gpu_lengths, _), (cpu_waves, cpu_lengths, _) in zip(
        batching.loader(clips, plan, 2, cuda), batching.loader(clips, plan, 0, cpu), strict=True
    ):
        assert gpu_waves.is_pinned()
        on_gpu = batching.to_device_float(gpu_waves, cuda)
        torch.cuda.synchronize()
        torch.testing.assert_close(on_gpu.cpu(), batching.to_device_float(cpu_waves, cpu), rtol=0, atol=0)
        assert torch.equal(gpu_lengths, cpu_lengths)


@pytest.mark.gpu
@needs_cuda
def test_channels_last_cnn14_matches_on_gpu(model, text_folder):
    """The CNN14 tower's channels_last path on CUDA embeds like the same weights on the CPU (fp32)."""
    waves, lengths, _ = _batch(text_folder)
    tower = copy.deepcopy(model.audio_encoder).eval()
    with torch.no_grad():
        on_cpu = tower.forward_embedding(batching.to_device_float(waves, torch.device("cpu")), lengths)
        tower = tower.cuda()
        on_gpu = tower.forward_embedding(batching.to_device_float(waves, torch.device("cuda")), lengths.cuda())
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-3, atol=1e-3)
