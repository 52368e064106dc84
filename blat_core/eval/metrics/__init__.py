"""The metrics: leaf modules that turn scores into numbers (retrieval recalls, classification accuracy and
mAP, caption metrics). They import nothing of `train/` or the rest of `eval/`, so the training stages can
report validation metrics without depending on the evaluation protocols: editing zero-shot scoring
re-trains nothing."""
