"""Evaluation of docqa on public data sets: retrieval quality (BEIR, SQuAD) and answer quality (SQuAD).

Each run builds a fresh collection with the real ingest pipeline, so the numbers describe docqa as a
user runs it, not a shortcut around it.
"""
