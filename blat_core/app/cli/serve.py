"""`blat serve --index index.parquet`: a local web page to search and listen (see blat_core.app.serve)."""

from __future__ import annotations

from blat_core.app.cli.common import positive_int


def add_parser(add, audio_options) -> None:
    sub = add("serve", run, "a local web page: search an index by text or by an audio file, listen to the clips, "
              "see a clip's nearest clips, zero-shot labels and (with --captioner/--tagger) its caption")  # fmt: skip
    sub.add_argument("--index", required=True, help="index written by `blat embed` (its audio files are served)")
    sub.add_argument("--audio-root", help="the folder the index's audio files are in, to listen to them (the "
                     "folder given to `blat embed`); without it, search works and playback is off")  # fmt: skip
    sub.add_argument("--model", help="model folder (default: the one that made the index)")
    sub.add_argument("--labels", help="labels file (one per line) for each clip's zero-shot labels")
    sub.add_argument("--captioner", help="captioner folder, to caption a clip (needs --tagger)")
    sub.add_argument("--tagger", help="the tagger folder the captioner was trained on")
    sub.add_argument("-k", type=positive_int, default=10, help="results per search (default 10)")
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sub.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    sub.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                     help="a further name the page may be reached by (the Host header), e.g. this machine's name "
                     "with --host 0.0.0.0; repeatable (default: only the bound address)")  # fmt: skip
    sub.add_argument("--device", help="cpu, cuda, … (default: CUDA when present)")


def run(args) -> int:
    from werkzeug.serving import make_server

    from blat_core.app.cli.common import UsageError, device_of
    from blat_core.app.serve import create_app, load_searcher, trusted_hosts

    searcher = load_searcher(args.index, args.model, device_of(args.device), args.labels, args.captioner, args.tagger,
                             args.audio_root)  # fmt: skip
    app = create_app(searcher, args.k, trusted_hosts(args.host, args.allowed_host))
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except OSError as error:
        raise UsageError(f"cannot listen on {args.host}:{args.port} ({error.strerror}): choose another --port"
                         ) from None  # fmt: skip
    print(f"serving {len(searcher.paths)} clips at http://{args.host}:{server.server_port}/ (Ctrl-C stops)", flush=True)
    if searcher.audio_root is None:
        print(f"playback is off: the index says its audio is in {searcher.index_audio_root or '(nowhere)'}; "
              "to listen, start again with --audio-root <that folder>", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
