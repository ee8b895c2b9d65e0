"""Benchmarks of twig_auth against pip-installed peers; run with ``python bench/run.py``."""
