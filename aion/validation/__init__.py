"""Forward validation of alerts: outcomes per alert and window, per-pattern statistics.

:func:`~aion.validation.forward.validate_alerts` (one row per alert x window) and
:func:`~aion.validation.forward.random_baseline` (the random-entry comparison) in
:mod:`aion.validation.forward`; :func:`~aion.validation.stats.summarize` (per pattern and
window, with 95% intervals) and :func:`~aion.validation.stats.compare` (pattern against
baseline with cluster-bootstrap intervals and a verdict) in :mod:`aion.validation.stats`;
:func:`~aion.validation.report.render_report` (the Markdown report of ``aion validate``);
the ``validation:`` settings in :mod:`aion.validation.config`.
"""
