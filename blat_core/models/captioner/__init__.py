"""The tag-guided audio captioner (SPEC §2 "Captioner"): vocabulary, model, batched beam search."""
