"""What the benchmarks share: models built into the bench cache, the search-efficiency scoring,
the kill-and-resume checks, the GPU machine's set-up and the result files."""
