"""`blat serve --index index.parquet`: a local web page to search and listen (see blat_core.app.serve)."""

from __future__ import annotations


def add_parser(add, audio_options) -> None:
    sub = add("serve", run, "a local web page: search an index by text or by an audio file, listen to the clips, "
              "see a clip's nearest clips, zero-shot labels and (with --captioner/--tagger) its caption")  # fmt: skip
    sub.add_argument("--index", required=True, help="index written by `blat embed` (its audio files are served)")
    sub.add_argument("--model", help="model folder (default: the one that made the index)")
    sub.add_argument("--labels", help="labels file (one per line) for each clip's zero-shot labels")
    sub.add_argument("--captioner", help="captioner folder, to caption a clip (needs --tagger)")
    sub.add_argument("--tagger", help="the tagger folder the captioner was trained on")
    sub.add_argument("-k", type=int, default=10, help="results per search (default 10)")
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sub.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    sub.add_argument("--device", help="cpu, cuda, … (default: CUDA when present)")


def run(args) -> int:
    from werkzeug.serving import make_server

    from blat_core.app.cli.common import device_of
    from blat_core.app.serve import create_app, load_searcher

    searcher = load_searcher(args.index, args.model, device_of(args.device), args.labels, args.captioner, args.tagger)
    app = create_app(searcher, args.k)
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"serving {len(searcher.paths)} clips at http://{args.host}:{server.server_port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
