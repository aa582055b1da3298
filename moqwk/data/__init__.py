"""Corpora: loading and checking one, the demo corpus, the per-prompt-scale corpus, the starter
config."""
