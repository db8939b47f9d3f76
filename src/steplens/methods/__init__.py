"""Test-time methods used as sampler options: the multi-seed latent ensemble (`ensemble`)."""
