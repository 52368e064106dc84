"""The demo corpus: procedural sound events written in the real formats of eight datasets."""
