"""BLAT reproduction library: data, models, metrics."""
