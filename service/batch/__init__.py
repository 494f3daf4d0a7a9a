"""The nightly batch: recompute every stored scenario whose inputs changed, on a local pool or on Dask.

- :mod:`~service.batch.run`: the batch itself (:func:`~service.batch.run.run_batch`), its lock and exit codes;
- :mod:`~service.batch.regions`: regions whose source files changed, re-imported once;
- :mod:`~service.batch.executors` and :mod:`~service.batch.tasks`: where and how each scenario runs;
- :mod:`~service.batch.report`: the morning report.

Fingerprints (what a run depends on, hashed, and why a scenario must run again) live in
:mod:`service.runs.fingerprint`: every run records its own, so the batch skips what the API has just computed.
Every scenario is planned by the one pipeline, as a run of the runs table (``trigger = batch``).
"""
