"""steplens: trace, probe and improve how video diffusion models reason along denoising steps."""

from .presets import Sampling, resolve  # what a run samples with: one frozen value, resolved once

__version__ = "0.1.0"
__all__ = ["Sampling", "resolve", "results"]


def results(path, what: str = "rows"):
    """A results folder as a pandas DataFrame (one row per condition and sample; `what="summary"`: the report's
    table); see `steplens.io.results`."""
    from .io.results import results as _results

    return _results(path, what)
