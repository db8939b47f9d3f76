"""The comparison of test-time methods: `steplens.probes.compare`, kept importable here for its callers."""

from __future__ import annotations

from .probes.compare import (ENSEMBLES, INDEPENDENT, METHODS, check_method, compare, condition,  # noqa: F401
                             generation, head_to_head, method_table, report_section, run_methods, versus)
