"""The quality bench's evaluation sets, the fact matcher and the BM25 baseline."""
