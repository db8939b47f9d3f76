"""Frame-prefix conditioning on a diffusers backend: what every pipeline model shares (issue 35).

A sample made by `steplens.tasks.continue_from_frames(sample, frames, k)` carries its K leading frames
(`Sample.prefix`, `Sample.known_frames`). A backend that can give them to its pipeline sets `prefix_why = None` and
builds the condition itself (Wan image-to-video: steplens.backends.wan.prefix; LTX-2: steplens.backends.ltx2.prefix);
every other backend refuses K > 1 with `prefix_why`, before its pipeline runs (`check_prefixes`, from the core's
call_inputs), never silently conditioning on the first frame alone.
"""

from __future__ import annotations

from dataclasses import replace

UNSUPPORTED = "its steplens backend gives its pipeline the first frame only (no frame-prefix conditioning)"


class FramePrefix:
    """The frame-prefix side of PipelineModel (mixed in): what K leading frames a model can be given, and their
    images at the call size."""

    # why this backend cannot be given K > 1 leading frames; None: it can (the backend builds the condition)
    prefix_why: str | None = UNSUPPORTED

    def prefix_refused(self) -> str | None:
        """Why this model cannot be given K > 1 leading frames, or None (a backend may decide per pipeline)."""
        return self.prefix_why

    @property
    def prefix_trained(self) -> int:
        """The most leading frames the model can be given (1: the first frame alone)."""
        return 1 if self.prefix_refused() else 10 ** 6

    def check_prefix(self, k: int, frames: int) -> None:
        """Refuse K leading frames this model cannot be given (with why), before any work."""
        if k < 1 or k >= frames:
            raise ValueError(f"K = {k} leading frames: K must be at least 1 and below the video's {frames} frames")
        why = self.prefix_refused() if k > 1 else None
        if why:
            raise ValueError(f"model {self.name!r} ({self.family}) cannot be given K = {k} leading frames: {why}")

    def check_prefixes(self, samples, frames: int) -> None:
        """Every sample's K leading frames against the call's `frames` (check_prefix)."""
        for s in samples:
            k = getattr(s, "known_frames", 1)
            if k > 1:
                self.check_prefix(k, frames)

    def prefix_images(self, samples, height: int, width: int) -> list:
        """Per sample: its K > 1 leading frames as PIL images of the call size (as its first frame), else None."""
        return [self.first_frames([replace(s, first_frame=f) for f in s.prefix], height, width)
                if getattr(s, "known_frames", 1) > 1 else None for s in samples]
