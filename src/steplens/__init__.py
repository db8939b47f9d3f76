"""steplens: trace, probe and improve how video diffusion models reason along denoising steps."""

__version__ = "0.1.0"
