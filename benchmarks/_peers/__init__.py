"""Helpers of `benchmarks/peers.py`: one module per framework, plus the shared timing,
data and FLOP code in `common`. Each peer module exposes builders that return a
`Runner` (see `common.Runner`); `peers.py` times them all in one process."""
