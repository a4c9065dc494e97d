"""Benchmarks (SPEC §11): a data generator, timed pages and a load test.

Scripts, not tests: ``python -m benchmarks.generate``, ``python -m benchmarks.run``
and ``python -m benchmarks.load``. See benchmarks/README.md.
"""
