"""Experiments: the resumable loop over (condition, sample) (`grid`), the one generate-and-score path (`evaluate`),
running a model over a folder of samples (`runner`), statistics (`stats`), ranks and shards under torchrun (`dist`),
the demo and the study (every probe on every family of a model, in one folder)."""
