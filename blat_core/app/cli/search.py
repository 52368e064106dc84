"""`blat search`: text-to-audio search over an index made by `blat embed`."""

from __future__ import annotations

import numpy as np

from blat_core.app.cli.common import (
    check_index_model,
    device_of,
    embed_texts,
    load_blat_folder,
    positive_int,
    read_index,
)


def add_parser(add, audio_options) -> None:
    sub = add("search", run, "text-to-audio search over an index made by `blat embed`")
    sub.add_argument("query", nargs="+", help="one or more text queries")
    sub.add_argument("--index", required=True, help="index written by `blat embed`")
    sub.add_argument("-k", type=positive_int, default=10, help="results per query (default 10)")
    sub.add_argument("--model", help="model folder (default: the one that made the index)")
    sub.add_argument("--device", help="cpu, cuda, … (default: CUDA when present)")


def run(args) -> None:
    paths, embeddings, meta = read_index(args.index)
    device = device_of(args.device)
    model_folder = args.model or meta["model"]
    model, tokenizer = load_blat_folder(model_folder, device)
    queries = embed_texts(model, tokenizer, args.query, device)
    check_index_model(args.index, meta, embeddings, model_folder, queries)
    for query, vector in zip(args.query, queries, strict=True):
        scores = embeddings @ vector
        print(f'"{query}"')
        for rank, i in enumerate(np.argsort(-scores, kind="stable")[: args.k], start=1):
            print(f"  {rank:>3}  {scores[i]:.3f}  {paths[i]}")
