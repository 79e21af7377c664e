"""Benchmark machinery, apart from the runtime: ``medcorr bench`` (:mod:`medcorr.benchmark.bench`) and the
machine's matrix-multiply rate it is measured against (:mod:`medcorr.benchmark.matmul_rate`).

Nothing on the runtime path (``import medcorr``, the spaCy component, the connector) imports this package;
``tests/test_bench.py`` checks that.
"""
