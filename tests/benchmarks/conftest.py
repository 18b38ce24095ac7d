"""The benchmarks are scripts, not tests (they print timings beside R's; see README.md in this folder):
pytest collects nothing here."""

collect_ignore_glob = ["*.py"]
