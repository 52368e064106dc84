"""`blat serve`: a local page to listen to what a model retrieves (Flask).

Text search over an index made by `blat embed` (top clips with audio players and scores), a page per clip
(its nearest clips, its zero-shot labels from a labels file, and with a captioner + tagger its generated
caption and predicted tags), and search by an uploaded audio file.

Any web page the user visits can send requests to a local server, and indexes travel between people, so:
- the folder whose audio is served comes from the command line (`--audio-root`), never from the index
  alone; only the index's audio files inside it are served, by row number (`/audio/<n>`), else 404;
- the Host header must name the address the server is bound to (or an `--allowed-host`), else 400 (DNS
  rebinding); a POST whose Origin is another site's is refused with 403 (cross-site uploads);
- an upload over `MAX_UPLOAD_MB` gets 413, and is decoded block by block up to `MAX_UPLOAD_SECONDS` (a small
  compressed file can decode to hours: longer ones get 413 as soon as the cap is passed); at most
  `EMBED_SLOTS` uploads are decoded and embedded at once, a request that waits `BUSY_SECONDS` gets 503;
- queries are checked: an empty one, or one longer than `MAX_QUERY` characters, gets a message and 400.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flask import Flask, abort, jsonify, render_template_string, request, send_file

from blat_core.app.cli.common import UsageError, check_index_model, embed_texts, load_blat_folder, read_index
from blat_core.data.sources import AUDIO_EXTENSIONS, inside_root

log = logging.getLogger(__name__)
MAX_QUERY = 300  # characters
MAX_UPLOAD_MB = 50
MAX_UPLOAD_SECONDS = 600.0  # decoded audio per upload: 10 minutes (about 40 MB of float32 at 16 kHz)
EMBED_SLOTS = 2  # uploads decoded and embedded at once
BUSY_SECONDS = 30.0  # how long an upload waits for a slot before 503
LOOPBACK = {"127.0.0.1", "localhost"}


class UploadTooLong(UsageError):
    """An upload that decodes to more than MAX_UPLOAD_SECONDS (answered with 413)."""


class ServerBusy(UsageError):
    """Every embedding slot stayed taken for BUSY_SECONDS (answered with 503)."""


@dataclass
class Searcher:
    """The index in memory (normalised embeddings), the model that made it, and the optional extras."""

    paths: list[str]
    embeddings: np.ndarray
    audio_root: Path | None  # None: playback and captions are off (no --audio-root given)
    model: object
    tokenizer: object
    device: object
    labels: list[str] = field(default_factory=list)
    label_embeddings: np.ndarray | None = None
    captioner: object = None
    tagger: tuple | None = None  # (tower, its meta)
    model_folder: str = ""
    window_seconds: float = 10.0  # the window the index was embedded with (`blat embed --window-seconds`)
    index_audio_root: str = ""  # where the index says its audio is (shown, never used without --audio-root)
    slots: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(EMBED_SLOTS))

    def by_text(self, query: str, k: int) -> tuple[list[tuple[int, float]], float]:
        started = time.perf_counter()
        vector = embed_texts(self.model, self.tokenizer, [query], self.device)[0]
        return self.top(self.embeddings @ vector, k), time.perf_counter() - started

    def top(self, scores: np.ndarray, k: int, exclude: int | None = None) -> list[tuple[int, float]]:
        if exclude is not None:
            scores = scores.copy()
            scores[exclude] = -np.inf
        k = min(k, len(scores) - (exclude is not None))
        best = np.argpartition(-scores, k - 1)[:k] if 0 < k < len(scores) else np.arange(len(scores))
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(int(i), float(scores[i])) for i in best[:k]]

    def by_file(self, path: str, k: int) -> list[tuple[int, float]]:
        """Nearest clips to an audio file, decoded and embedded window by window (never more than
        MAX_UPLOAD_SECONDS of it) in one of EMBED_SLOTS slots."""
        from blat_core.data.audio import AudioError, stream_clip
        from blat_core.models.inference import WindowEmbedder, stream_windows

        rate = self.model.audio_encoder.sample_rate
        window = int(self.window_seconds * rate)  # as the index's clips were embedded, so scores compare
        if not self.slots.acquire(timeout=BUSY_SECONDS):
            raise ServerBusy(f"the server is busy with {EMBED_SLOTS} other uploads; try again in a minute")
        try:
            embedder = WindowEmbedder(self.model, 8, self.device)
            for piece in stream_windows(stream_clip(path, rate, MAX_UPLOAD_SECONDS, "the upload limit"), window):
                embedder.add(0, piece)
            vector = embedder.finish(1)[0]
        except AudioError as error:
            if error.reason == "too_long":
                raise UploadTooLong(f"the uploaded audio is longer than {MAX_UPLOAD_SECONDS / 60:g} minutes (decoding "
                                    "stopped there): search with a shorter excerpt") from None  # fmt: skip
            raise UsageError(f"the uploaded file could not be used as audio: {error}") from None
        finally:
            self.slots.release()
        return self.top(self.embeddings @ vector, k)

    def audio_path(self, i: int) -> str | None:
        """Clip i's file when it may be served: playback on, inside --audio-root, an audio file name."""
        if self.audio_root is None or not 0 <= i < len(self.paths):
            return None
        path = inside_root(self.audio_root, self.paths[i])
        if path is None or Path(path).suffix.lower() not in AUDIO_EXTENSIONS or not os.path.isfile(path):
            return None
        return path

    def zero_shot(self, i: int, k: int = 5) -> list[tuple[str, float]]:
        if self.label_embeddings is None:
            return []
        return [(self.labels[j], s) for j, s in self.top(self.label_embeddings @ self.embeddings[i], k)]

    def describe(self, i: int) -> tuple[str, list[str]] | None:
        """(caption, tags) of clip i with the captioner and tagger, or None without them."""
        if self.captioner is None or self.tagger is None:
            return None
        from blat_core.app.cli.caption import frames_and_tags
        from blat_core.data.audio import load_clip
        from blat_core.models.captioner.inference import TAG_THRESHOLD, caption_frames

        tower, meta = self.tagger
        path = self.audio_path(i)
        if path is None:
            return "(the clip's audio is not available: start `blat serve` with --audio-root)", []
        wave, reason, _ = load_clip(path, tower.sample_rate, float("-inf"), max_seconds=MAX_UPLOAD_SECONDS,
                                    limit="the clip limit")  # fmt: skip
        if wave is None:
            return f"(unreadable: {reason})", []
        uses_tags = self.captioner.model.tags is not None
        frames, tag_lists = frames_and_tags(tower, meta, [wave], uses_tags, None, TAG_THRESHOLD, self.device)
        captions, _ = caption_frames(self.captioner, frames, tag_lists, self.captioner.beam, self.captioner.max_tokens,
                                     self.device)  # fmt: skip
        names = dict(self.captioner.classes)
        return captions[0], [names.get(m, m) for m in tag_lists[0]]


def load_searcher(index: str, model: str | None, device, labels: str | None = None, captioner: str | None = None,
                  tagger: str | None = None, audio_root: str | None = None) -> Searcher:  # fmt: skip
    """The index and its model in memory. `audio_root`: the folder whose files the index's rows name (from
    the command line: the index's own record of it is shown, never trusted); None turns playback off."""
    import torch

    device = torch.device(device)
    paths, embeddings, meta = read_index(index)
    root = None
    if audio_root is not None:
        root = Path(audio_root).expanduser()
        if not root.is_dir():
            raise UsageError(f"--audio-root {audio_root} is not a folder")
        root = root.resolve()
    folder = model or meta["model"]
    blat, tokenizer = load_blat_folder(folder, device)
    probe = embed_texts(blat, tokenizer, ["a sound"], device)
    check_index_model(index, meta, embeddings, folder, probe)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    searcher = Searcher(paths, (embeddings / np.maximum(norms, 1e-12)).astype(np.float32), root, blat, tokenizer,
                        device, model_folder=str(folder), window_seconds=float(meta.get("window_seconds", 10.0)),
                        index_audio_root=str(meta.get("audio_root", "")))  # fmt: skip
    if labels:
        from blat_core.app.cli.common import read_text_lines

        names = [line.strip() for line in read_text_lines(labels, "labels file") if line.strip()]
        if not names:
            raise UsageError(f"{labels} holds no labels (one per line)")
        searcher.labels = names
        searcher.label_embeddings = embed_texts(blat, tokenizer, [n.replace("_", " ") for n in names], device)
    if bool(captioner) != bool(tagger):
        raise UsageError("--captioner and --tagger go together: the captioner reads the tagger's frame features")
    if captioner:
        from blat_core.models.audio.encoder import load_audio_encoder
        from blat_core.models.captioner.io import load_captioner

        searcher.captioner = load_captioner(captioner, device)
        tower, tower_meta = load_audio_encoder(tagger)
        searcher.tagger = (tower.to(device).eval(), tower_meta)
    return searcher


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>blat serve{% if query %}: {{ query }}{% endif %}</title>
<style>
 body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222 }
 form { display: flex; gap: .5rem; margin: .5rem 0 } input[type=text] { flex: 1; font-size: 1.1rem; padding: .4rem }
 ol { padding-left: 1.5rem } li { margin: .6rem 0 } .score { font-family: monospace; color: #555 }
 .message { background: #fff3cd; padding: .6rem; border-radius: .3rem } audio { vertical-align: middle; height: 2rem }
 .meta { color: #666; font-size: .9rem }
</style></head><body>
<h1><a href="/">blat serve</a></h1>
<p class="meta">{{ clips }} clips from {{ root }} · model {{ model }}</p>
<form action="/" method="get"><input type="text" name="q" value="{{ query }}" placeholder="describe a sound"
 maxlength="{{ max_query }}" aria-label="text query" id="query"><button type="submit">Search</button></form>
<form action="/by-audio" method="post" enctype="multipart/form-data"><input type="file" name="audio" accept="audio/*"
 aria-label="audio file"><button type="submit">Search by audio</button></form>
{% if message %}<p class="message" id="message">{{ message }}</p>{% endif %}
{% if clip is not none %}
 <h2 id="clip">{{ clip.path }}</h2><audio controls preload="metadata" src="/audio/{{ clip.index }}"></audio>
 {% if clip.caption %}<p id="caption">Caption: <b>{{ clip.caption }}</b>
  {% if clip.tags %} · tags: {{ clip.tags|join(", ") }}{% endif %}</p>{% endif %}
 {% if clip.labels %}<h3>Zero-shot labels</h3><ol id="labels">{% for label, score in clip.labels %}
  <li>{{ label }} <span class="score">{{ "%.3f"|format(score) }}</span></li>{% endfor %}</ol>{% endif %}
 <h3>Nearest clips</h3>
{% endif %}
{% if results %}<ol id="results">{% for r in results %}
 <li><span class="score">{{ "%.3f"|format(r.score) }}</span> <a href="/clip/{{ r.index }}">{{ r.path }}</a><br>
 <audio controls preload="none" src="/audio/{{ r.index }}"></audio></li>{% endfor %}</ol>
 {% if seconds is not none %}<p class="meta">answered in {{ "%.0f"|format(1000 * seconds) }} ms</p>{% endif %}
{% endif %}
</body></html>"""


def trusted_hosts(host: str, allowed: list[str] | None = None) -> list[str]:
    """The Host header names a request may carry: the bound address (both loopback names for a loopback
    address) and `allowed`. An address that listens on every interface (0.0.0.0) trusts only the loopback
    names and `allowed`: name the machine with --allowed-host to reach it from elsewhere. (IPv6 literals are
    not matched by Werkzeug's trusted-host check: use a name.)"""
    names = {host} - {"0.0.0.0", ""}
    if names <= LOOPBACK:
        names |= LOOPBACK
    return sorted(names | {name.lower() for name in allowed or []})


def create_app(searcher: Searcher, k: int = 10, hosts: list[str] | None = None) -> Flask:
    """The Flask app. `hosts`: the Host names it answers (`trusted_hosts`; default: loopback only)."""
    app = Flask("blat_serve")
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_MB * 2**20
    app.config["TRUSTED_HOSTS"] = hosts or trusted_hosts("127.0.0.1")

    @app.before_request
    def same_site_only():
        """A state-changing request from another site's page is refused (its Origin names that site; a
        non-browser client sends none). The Host header was checked against TRUSTED_HOSTS by Flask."""
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        origin = request.headers.get("Origin")
        fetch_site = request.headers.get("Sec-Fetch-Site", "same-origin")
        if (origin is not None and origin != request.host_url.rstrip("/")) or fetch_site == "cross-site":
            log.warning("refused a %s from origin %s (this page is %s)", request.method, origin, request.host_url)
            return page(403, message="Refused: the request came from another site's page.")
        return None

    def page(status: int = 200, **values):
        root = (str(searcher.audio_root) if searcher.audio_root is not None else
                f"(playback off: start with --audio-root; the index names {searcher.index_audio_root or 'no folder'})")
        base = {"query": "", "message": "", "results": [], "clip": None, "seconds": None, "clips": len(searcher.paths),
                "root": root, "model": searcher.model_folder, "max_query": MAX_QUERY}  # fmt: skip
        return render_template_string(PAGE, **{**base, **values}), status

    def rows(found: list[tuple[int, float]]) -> list[dict]:
        return [{"index": i, "path": searcher.paths[i], "score": s} for i, s in found]

    def checked(query: str | None) -> tuple[str, str]:
        """(query, problem): the problem is '' for a usable query."""
        query = (query or "").strip()
        if not query:
            return query, "Type a description of a sound to search for (the query is empty)."
        if len(query) > MAX_QUERY:
            return query[:MAX_QUERY], f"The query is {len(query)} characters long; at most {MAX_QUERY} are allowed."
        return query, ""

    @app.get("/")
    def home():
        if "q" not in request.args:
            return page()
        query, problem = checked(request.args.get("q"))
        if problem:
            return page(400, query=query, message=problem)
        found, seconds = searcher.by_text(query, k)
        return page(query=query, results=rows(found), seconds=seconds)

    @app.get("/api/search")
    def api_search():
        query, problem = checked(request.args.get("q"))
        if problem:
            return jsonify({"error": problem}), 400
        found, seconds = searcher.by_text(query, k)
        return jsonify({"query": query, "results": rows(found), "seconds": seconds})

    @app.get("/clip/<int:index>")
    def clip(index: int):
        if not 0 <= index < len(searcher.paths):
            abort(404)
        described = searcher.describe(index)
        info = {"index": index, "path": searcher.paths[index], "labels": searcher.zero_shot(index),
                "caption": described[0] if described else "", "tags": described[1] if described else []}  # fmt: skip
        nearest = searcher.top(searcher.embeddings @ searcher.embeddings[index], k, exclude=index)
        return page(clip=info, results=rows(nearest))

    @app.post("/by-audio")
    def by_audio():
        upload = request.files.get("audio")
        if upload is None or not upload.filename:
            return page(400, message="Choose an audio file to search by.")
        # The name is the client's: only a plain extension of it reaches the file system (a NUL byte, a
        # slash or a very long suffix would not), so the decoder can tell the format.
        suffix = Path(upload.filename.replace("\0", "")).suffix.lower()
        handle, path = tempfile.mkstemp(suffix=suffix if re.fullmatch(r"\.[a-z0-9]{1,6}", suffix) else "")
        try:
            with os.fdopen(handle, "wb") as out:
                upload.save(out)
            found = searcher.by_file(path, k)
        except UploadTooLong as error:
            return page(413, message=str(error))
        except ServerBusy as error:
            return page(503, message=str(error))
        except UsageError as error:
            return page(400, message=str(error))
        finally:
            os.unlink(path)
        return page(message=f"Clips nearest to {upload.filename}:", results=rows(found))

    @app.get("/audio/<int:index>")
    def audio(index: int):
        path = searcher.audio_path(index)
        if path is None:
            abort(404)
        return send_file(path, conditional=True)

    @app.errorhandler(413)
    def too_large(_):
        return page(413, message=f"The file is larger than {MAX_UPLOAD_MB} MB.")

    return app
