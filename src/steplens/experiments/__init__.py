"""Experiments' machinery: the resumable loop over (condition, sample) (`grid`), the one generate-and-score path
(`evaluate`), statistics (`stats`), ranks and shards under torchrun (`dist`), the Ray engine (`engine`), provenance
and VBVR scores. The jobs built on it (study, demo, chains, runner, plan) are in `steplens.orchestrators`."""
