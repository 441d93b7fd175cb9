"""Benchmarks: ``python -m engine.bench extract|train|merge [--json] ...`` (``swapwizard bench ...``)."""
