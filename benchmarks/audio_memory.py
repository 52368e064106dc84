"""Benchmark: peak memory of decoding hostile or long audio, in a server and in `blat embed`, on this machine.

    python benchmarks/audio_memory.py serve [--bomb-mb 5] [--concurrent 1 3] [--no-length] [--guard-gb 14]
    python benchmarks/audio_memory.py embed [--hours 1] [--rate 48000] [--channels 2] [--guard-gb 14]

`serve`: a FLAC "decompression bomb" (a constant signal at 48 kHz, which FLAC stores in a few bytes per block:
`--bomb-mb` of file decodes to hours of audio) is uploaded to a real `blat serve` process (a tiny random model
and a four-clip index), once alone and then by several clients at once; the server's resident memory is
sampled every 10 ms. `--no-length` zeroes the FLAC's length field (as a file written to a pipe has it, so the
header cannot give the length away and the decoder must stop at the cap by itself). `embed`: `blat embed`
over a folder holding one long 48 kHz stereo file (white noise, so FLAC cannot shrink it: written as WAV in
blocks). Both print the peak resident set size above the process's
idle size and what the request or command answered. A process passing `--guard-gb` is killed and reported
as "killed at the guard" (so the measurement cannot take the machine down).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.helpers.tiny_models: the random model folders the tests use

from tests.helpers.tiny_models import make_models  # noqa: E402


def write_bomb(path: Path, megabytes: float) -> float:
    """A constant-signal 48 kHz mono FLAC of about `megabytes`; returns its duration in seconds."""
    block = np.full(48000 * 60, 0.25, dtype=np.float32)
    with sf.SoundFile(path, "w", 48000, 1, format="FLAC") as out:
        minutes = 0
        while path.stat().st_size < megabytes * 1e6 * 0.98 or minutes == 0:
            out.write(block)
            minutes += 1
            if minutes % 30 == 0:
                out.flush()
    return minutes * 60.0


def write_long_wav(path: Path, hours: float, rate: int, channels: int) -> None:
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, channels, subtype="PCM_16") as out:
        for _ in range(int(hours * 60)):
            out.write((0.1 * rng.standard_normal((rate * 60, channels))).astype(np.float32))


class Peak:
    """Samples a process's RSS (with its children) every 10 ms; kills it above `guard` bytes."""

    def __init__(self, pid: int, guard: float):
        self.process, self.guard = psutil.Process(pid), guard
        self.base = self.rss()
        self.peak, self.killed, self._stop = self.base, False, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def rss(self) -> int:
        try:
            return sum(p.memory_info().rss for p in [self.process, *self.process.children(recursive=True)])
        except psutil.Error:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            if self.peak > self.guard and not self.killed:
                self.killed = True
                self.process.kill()
            time.sleep(0.01)

    def stop(self) -> str:
        self._stop.set()
        self.thread.join()
        killed = " (killed at the guard)" if self.killed else ""
        return f"peak RSS +{(self.peak - self.base) / 2**20:,.0f} MiB over idle {self.base / 2**20:,.0f} MiB{killed}"


def upload(url: str, path: Path) -> str:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="{path.name}"\r\n'
            "Content-Type: audio/flac\r\n\r\n")  # fmt: skip
    body = head.encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Origin": url}
    request = urllib.request.Request(f"{url}/by-audio", body, headers)
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return str(response.status)
    except urllib.error.HTTPError as error:
        return str(error.code)
    except (urllib.error.URLError, ConnectionError) as error:
        return f"no answer ({type(error).__name__})"


def serve(args, tmp: Path) -> None:
    models = make_models(tmp / "models")
    audio = tmp / "audio"
    audio.mkdir()
    for i in range(4):
        sf.write(audio / f"clip{i}.wav", (0.3 * np.sin(np.arange(32000) * (0.05 + 0.01 * i))).astype(np.float32), 16000)
    blat = [sys.executable, "-m", "blat_core.app.cli"]
    subprocess.run([*blat, "embed", str(audio), "--model", str(models / "blat"), "--out", str(tmp / "index.parquet")],
                   check=True, capture_output=True)  # fmt: skip
    bomb = tmp / "bomb.flac"
    seconds = write_bomb(bomb, args.bomb_mb)
    if args.no_length:  # STREAMINFO's 36-bit total-samples field and MD5 (FLAC format spec) set to 0: "unknown"
        data = bytearray(bomb.read_bytes())
        data[21] &= 0xF0
        data[22:42] = bytes(20)
        bomb.write_bytes(bytes(data))
    print(f"bomb: {bomb.stat().st_size / 1e6:.2f} MB FLAC, {seconds / 3600:.1f} h at 48 kHz mono"
          + (", no length in its header" if args.no_length else ""))
    command = [*blat, "serve", "--index", str(tmp / "index.parquet"), "--port", "0", "--device", "cpu"]
    if "--audio-root" in subprocess.run([*blat, "serve", "--help"], capture_output=True, text=True).stdout:
        command += ["--audio-root", str(audio)]  # (older servers took the folder from the index)
    for clients in args.concurrent:
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = server.stdout.readline()
        url = line.split(" at ")[1].split("/ ")[0].rstrip("/")
        time.sleep(0.5)
        peak = Peak(server.pid, args.guard_gb * 2**30)
        answers: list[str] = []
        threads = [threading.Thread(target=lambda u=url, a=answers: a.append(upload(u, bomb))) for _ in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"{clients} concurrent upload(s): answers {sorted(answers)} in {time.perf_counter() - started:.1f} s; "
              f"{peak.stop()}")  # fmt: skip
        server.kill()
        server.wait()


def embed(args, tmp: Path) -> None:
    models = make_models(tmp / "models")
    audio = tmp / "audio"
    audio.mkdir()
    write_long_wav(audio / "long.wav", args.hours, args.rate, args.channels)
    size = (audio / "long.wav").stat().st_size / 1e9
    print(f"input: {args.hours} h, {args.rate} Hz, {args.channels} channels, {size:.2f} GB WAV")
    command = [sys.executable, "-m", "blat_core.app.cli", "embed", str(audio), "--model", str(models / "blat"),
               "--out", str(tmp / "index.parquet"), "--device", "cpu"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = Peak(process.pid, args.guard_gb * 2**30)
    started = time.perf_counter()
    said = process.communicate()[0].strip().splitlines()
    print(f"blat embed: exit {process.returncode} in {time.perf_counter() - started:.1f} s "
          f"({said[-1] if said else ''}); {peak.stop()}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["serve", "embed"])
    parser.add_argument("--bomb-mb", type=float, default=5.0)
    parser.add_argument("--concurrent", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--no-length", action="store_true")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=int, default=48000)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--guard-gb", type=float, default=14.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (serve if args.what == "serve" else embed)(args, Path(tmp))


if __name__ == "__main__":
    main()
