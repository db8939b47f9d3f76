"""`python -m steplens.cli` (torchrun launches it so)."""

from . import main

main()
