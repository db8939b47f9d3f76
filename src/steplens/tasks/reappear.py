"""Object reappearance (working memory): an object moving at constant speed passes behind an occluder; the
answer is the last frame, with the object out on the other side at the right place, colour and shape.

Picture (native pixels, a black one-pixel border): a 13 x 33 white strip; a grey occluder near the middle (its
place varies by up to 3 pixels either way); a 3 x 3 object (square, plus, X, T or L shape; red, green, blue or
yellow) left of it. (Until 2026-12 the occluder stood in the middle and there were three shapes: about 1,500
distinct first frames at the default size, too few to hold any out of training.) Its speed is shown in frame 0 by
a faded copy at its previous position (one frame earlier), so one frame says where it goes. Frames 1 .. T-2
move it on (behind the occluder it is hidden); the last frame has it at x0 + speed * (T - 1), past the occluder.

Difficulty knob `size`: the occluder's width in pixels (3..11, default 7; a wider occluder hides the object for
longer). Scorer `reappear`: success when the last frame shows the object's shape in its colour at the right
place (at least 8 of its 9 cells right) and the occluder and the background are kept; partial credit for the
right colour in the right place with the wrong shape (0.5) or the right shape one pixel off (0.5); at most
0.05 when nothing reappears or the frame is flat.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import numpy as np

from .contract import Candidate, Score
from .rules import RuleBasedScorer
from .sample import Sample

H, W = 13, 33
WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (128, 128, 128)
COLOURS = {"red": (255, 0, 0), "green": (0, 200, 0), "blue": (0, 0, 255), "yellow": (230, 200, 0)}
SHAPES = {"square": np.ones((3, 3), bool), "plus": np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool),
          "cross": np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], bool),
          "tee": np.array([[1, 1, 1], [0, 1, 0], [0, 1, 0]], bool),
          "ell": np.array([[1, 0, 0], [1, 0, 0], [1, 1, 1]], bool)}  # any two differ in >= 4 of 9 cells
MAX_SHIFT = 3  # the occluder stands up to this many pixels left or right of the middle
MIN_W, MAX_W, DEFAULT_W = 3, 11, 7
DEFAULT_FRAMES = 4
PROMPT = "the object moves on behind the grey wall: draw where it comes out, same colour and shape"


@dataclass(frozen=True)
class Scene:
    colour: str
    shape: str
    row: int  # top row of the object
    x0: int  # left column in frame 0
    speed: int  # pixels per frame, > 0
    occ: tuple[int, int]  # occluder columns [a, b)


def scene(seed: int, width: int, frames: int) -> Scene:
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or not MIN_W <= width <= MAX_W:
        raise ValueError(f"reappear difficulty (occluder width) must be an integer from {MIN_W} to {MAX_W} pixels, "
                         f"got {width!r}")
    rng = random.Random(f"reappear-v2-{width}-{frames}-{seed}")

    def moves(a: int) -> list[tuple[int, int]]:
        # every (x0, speed): the faded copy and the object left of the occluder [a, a + width), out past it at the
        # end, in the frame
        return [(x0, v) for v in range(2, 13) for x0 in range(1 + v, a - 2)
                if x0 + v * (frames - 1) >= a + width and x0 + v * (frames - 1) + 3 <= W - 1]

    middle = (W - width) // 2
    places = [a for a in range(middle - MAX_SHIFT, middle + MAX_SHIFT + 1) if moves(a)]
    if not places:
        raise ValueError(f"reappear: with {frames} frames the object cannot pass an occluder {width} pixels wide "
                         f"in a {W}-pixel strip; use more frames or a narrower occluder (--size)")
    a = rng.choice(places)
    x0, speed = rng.choice(moves(a))
    return Scene(rng.choice(sorted(COLOURS)), rng.choice(sorted(SHAPES)), rng.randint(1, H - 4), x0, speed,
                 (a, a + width))


def _base(sc: Scene) -> np.ndarray:
    img = np.empty((H, W, 3), np.uint8)
    img[:] = WHITE
    img[0], img[-1], img[:, 0], img[:, -1] = BLACK, BLACK, BLACK, BLACK
    return img


def _draw(img: np.ndarray, sc: Scene, x: int, colour=None) -> None:
    rr, cc = np.nonzero(SHAPES[sc.shape])
    for r, c in zip(rr + sc.row, cc + x):
        if 0 < c < W - 1 and not sc.occ[0] <= c < sc.occ[1]:
            img[r, c] = colour if colour is not None else COLOURS[sc.colour]


def render(sc: Scene, frames: int) -> np.ndarray:
    video = []
    ghost = faded(sc.colour)
    for t in range(frames):
        img = _base(sc)
        if t == 0:
            _draw(img, sc, sc.x0 - sc.speed, ghost)
        _draw(img, sc, sc.x0 + sc.speed * t)
        img[1:-1, sc.occ[0]: sc.occ[1]] = GREY  # the occluder in front
        video.append(img)
    return np.stack(video)


@dataclass(frozen=True)
class ReappearTask:
    name: str = "reappear"
    aliases: tuple[str, ...] = ("object-reappearance",)
    default_size: int = DEFAULT_W
    sizes: tuple[int, int] = (MIN_W, MAX_W)
    default_frames: int = DEFAULT_FRAMES
    scorer: str = "reappear"

    def sample(self, seed: int, size: int | None = None, frames: int | None = None, idx: int | None = None) -> Sample:
        from ..io.video import check_frames

        frames = check_frames(self.default_frames if frames is None else frames)
        sc = scene(seed, self.default_size if size is None else size, frames)
        video = render(sc, frames)
        meta = {"task": self.name, "seed": int(seed), "colour": sc.colour, "shape": sc.shape, "row": sc.row,
                "x0": sc.x0, "speed": sc.speed, "occluder": list(sc.occ),
                "end_x": sc.x0 + sc.speed * (frames - 1)}
        return Sample(task=self.name, first_frame=video[0], prompt=PROMPT, frames=frames, meta=meta,
                      ground_truth=video, idx=idx, seed=int(seed), key=None if idx is None else f"{self.name}/{idx:05d}")

    def candidates(self, sample: Sample) -> list[Candidate]:
        """Working memory: the object where it must reappear in its own colour and shape (right), and in every
        other colour and every other shape (wrong: what x0_hat may hold once the object is hidden). Needs the
        sample's metadata (the scene); [] without it."""
        m = sample.meta or {}
        if not {"colour", "shape", "row", "x0", "speed", "occluder", "end_x"} <= set(m):
            return []
        sc = Scene(m["colour"], m["shape"], m["row"], m["x0"], m["speed"], tuple(m["occluder"]))
        options = [(sc.colour, sc.shape)] + [(c, sc.shape) for c in sorted(COLOURS) if c != sc.colour] + [
            (sc.colour, sh) for sh in sorted(SHAPES) if sh != sc.shape]
        out = []
        for colour, shape in options:
            img = _base(sc)
            _draw(img, replace(sc, colour=colour, shape=shape), m["end_x"])
            img[1:-1, sc.occ[0]: sc.occ[1]] = GREY
            out.append(Candidate(f"{colour} {shape}", img, (colour, shape) == (sc.colour, sc.shape)))
        return out

    def verify(self, video: np.ndarray, sample: Sample) -> Score:
        """The verifier (no answer read): the `reappear` scorer's rules against the scene read from frame 0
        (`read_scene`: colour, shape, place, the occluder, and the speed from the faded copy at the object's
        previous position) instead of the metadata. It differs from the scorer only where frame 0 is misread (a
        lossy or re-coloured first frame); on steplens's own samples it reads the generator's scene exactly."""
        if sample.frames is None:
            raise ValueError(f"{sample.name}: verifying a reappear answer needs the sample's frame count (where the "
                             f"object is at the last frame)")
        try:
            scene = read_scene(sample.first_frame, sample.frames)
        except ValueError as e:
            raise ValueError(f"{sample.name}: {e}") from None
        out = score_scene(video, scene, sample.frames)
        out.details["scene"] = scene
        return out

    def check(self, video: np.ndarray, sample: Sample) -> Score:
        """The checker (validity rules only, nothing solved): the last frame shows the object of frame 0, its colour
        and shape, once, whole, in its row and out past the occluder, with the occluder and the background kept.
        Where past the occluder is not asked (that needs the speed read and the motion solved), so it accepts the
        object anywhere beyond the wall. Score 1 then; 0.5 for the right colour past the wall in another shape or
        row; else 0."""
        try:
            scene = read_scene(sample.first_frame, sample.frames or len(np.asarray(video)))
        except ValueError as e:
            raise ValueError(f"{sample.name}: {e}") from None
        last = _native(np.asarray(video)[-1]).astype(int)
        a, b = scene["occluder"]
        near = np.abs(last - np.array(COLOURS[scene["colour"]])).sum(-1) < 120
        occ_kept = float((np.abs(last[1:-1, a:b] - np.array(GREY)).sum(-1) < 120).mean())
        rows, cols = np.nonzero(near)
        whole = past = False
        if len(rows):
            r, c = int(rows.min()), int(cols.min())
            box = near[r: r + 3, c: c + 3]
            past = c >= b
            whole = (box.shape == (3, 3) and (box == SHAPES[scene["shape"]]).all() and int(near.sum()) ==
                     int(SHAPES[scene["shape"]].sum()) and r == scene["row"])
        ok = whole and past and occ_kept > 0.9
        s = 1.0 if ok else 0.5 if past and occ_kept > 0.9 and len(rows) else 0.0
        return Score(score=s, success=bool(ok), details={"object_whole": bool(whole), "past_occluder": bool(past),
                                                         "occluder_kept": occ_kept, "strength": "checker"})

    def check_partial(self, video: np.ndarray, sample: Sample) -> Score:
        """The checker on a video not over yet (its last frame; `partial_checks` judges every frame with it): the
        occluder kept, and the object, where any of it shows, is frame 0's object (its colour and shape, cut only
        by the occluder and the border) in its row, once, moved on to the right of where frame 0 has it (frame 0
        itself: where frame 0 has it). Hidden whole (behind the wall) passes. Its speed is not read, so where it should be is not asked (nothing solved)."""
        try:
            scene = read_scene(sample.first_frame, sample.frames or len(np.asarray(video)))
        except ValueError as e:
            raise ValueError(f"{sample.name}: {e}") from None
        frame = _native(np.asarray(video)[-1]).astype(int)
        a, b = scene["occluder"]
        occ_kept = float((np.abs(frame[1:-1, a:b] - np.array(GREY)).sum(-1) < 120).mean())
        near = np.abs(frame - np.array(COLOURS[scene["colour"]])).sum(-1) < 120
        shows = bool(near.any())
        at = None
        if shows:  # the left column x (> x0) where the object, cut as the renderer cuts it, is exactly what shows
            sc = Scene(scene["colour"], scene["shape"], scene["row"], 0, 1, (a, b))
            for x in range(scene["x0"] + (len(np.asarray(video)) > 1), W - 1):
                img = np.zeros((H, W, 3), np.uint8)
                _draw(img, sc, x, (1, 1, 1))
                if (img[..., 0] == 1).any() and ((img[..., 0] == 1) == near).all():
                    at = x
                    break
        ok = occ_kept > 0.9 and (not shows or at is not None)
        return Score(score=float(ok), success=bool(ok),
                     details={"object_shows": shows, "object_at": at, "occluder_kept": occ_kept,
                              "strength": "checker", "partial": True})

    def answer_region(self, sample: Sample) -> np.ndarray:
        """Where the object must reappear (its 3 x 3 box in the last frame), and where it was in frame 0."""
        from .contract import default_answer_region

        return default_answer_region(sample) if sample.final_frame is not None else np.zeros((H, W), bool)


def _native(frame: np.ndarray) -> np.ndarray:
    from ..regions import downscale

    h, w = frame.shape[:2]
    if h % H or w % W or h // H != w // W:
        raise ValueError(f"a reappear frame is {W}x{H} pixels or an integer upscale, got {w}x{h}")
    return downscale(frame, h // H)


class ReappearScorer(RuleBasedScorer):
    """Scores the last frame of the video against where the object is at that frame's time: frame T - 1 of a
    T-frame video (T >= 2; a single frame is read as the final frame of the sample's own length). At the sample's
    own length that is where it reappears past the occluder; a shorter video may end with the object partly or
    wholly hidden, and is then right when it shows just the visible part (or nothing) there."""

    name = "reappear"
    tasks = ("reappear",)

    def score(self, video: np.ndarray, sample: Sample) -> Score:
        m = sample.meta
        if not {"colour", "shape", "row", "end_x", "occluder"} <= set(m):
            raise ValueError(f"{sample.name}: a reappear sample needs its metadata (colour, shape, row, end_x, "
                             f"occluder) to be scored")
        return score_scene(video, m, sample.frames)


def faded(colour: str) -> tuple[int, int, int]:
    """The colour of the object's faded copy (its previous position) in frame 0."""
    return tuple(int(255 - 0.35 * (255 - v)) for v in COLOURS[colour])


def read_scene(first_frame: np.ndarray, frames: int) -> dict:
    """The scene as frame 0 shows it (the verifier's reading, no metadata): the object's colour, shape and place,
    its speed from the faded copy at its previous position (the motion cue), the occluder; and `end_x`, where it
    is at frame `frames` - 1. Raises ValueError naming what frame 0 lacks."""
    img = _native(np.asarray(first_frame)).astype(int)
    body = np.zeros((H, W), bool)
    body[1:-1, 1:-1] = True

    def near(rgb) -> np.ndarray:
        return (np.abs(img - np.array(rgb)).sum(-1) < 60) & body

    grey_cols = np.nonzero(near(GREY)[1:-1].all(0))[0]
    if not len(grey_cols):
        raise ValueError("reappear frame 0 has no grey occluder (a full-height grey band)")
    occ = (int(grey_cols[0]), int(grey_cols[-1]) + 1)
    counts = {c: int(near(rgb).sum()) for c, rgb in COLOURS.items()}
    colour = max(counts, key=counts.get)
    solid, ghost = near(COLOURS[colour]), near(faded(colour))
    if not counts[colour] or not ghost.any():
        raise ValueError("reappear frame 0 shows no object with its faded copy (the motion cue)")
    rows, cols = np.nonzero(solid)
    row, x0 = int(rows.min()), int(cols.min())
    box = solid[row: row + 3, x0: x0 + 3]
    shape = next((k for k, m in SHAPES.items() if box.shape == m.shape and (box == m).all()), None)
    if shape is None:
        raise ValueError(f"reappear frame 0: the {colour} object is none of the shapes {', '.join(SHAPES)}")
    speed = x0 - int(np.nonzero(ghost)[1].min())
    return {"colour": colour, "shape": shape, "row": row, "x0": x0, "speed": speed, "occluder": list(occ),
            "end_x": x0 + speed * (frames - 1)}


def score_scene(video: np.ndarray, m: dict, frames: int | None) -> Score:
    """The reappear rules (see ReappearScorer) for a scene `m` (colour, shape, row, end_x, occluder; x0 and speed
    for a video of another length than the sample's `frames`), from the metadata or read from frame 0."""
    video = np.asarray(video)
    t = len(video) if len(video) >= 2 else frames
    x_end = m["end_x"] if t == frames or not {"x0", "speed"} <= set(m) else m["x0"] + m["speed"] * (t - 1)
    last = _native(video[-1]).astype(int)
    colour = np.array(COLOURS[m["colour"]])
    near = np.abs(last - colour).sum(-1) < 120  # pixels of the object's colour
    shape = SHAPES[m["shape"]]
    a, b = m["occluder"]
    cols = np.arange(W)
    visible = (cols > 0) & (cols < W - 1) & ~((cols >= a) & (cols < b))  # columns where the object can show

    def fit(dx: int) -> float:
        x = x_end + dx
        if x < 1 or x + 3 > W - 1:
            return 0.0
        show = visible[x: x + 3]
        if not show.any():
            return 1.0 if dx == 0 else 0.0
        box = near[m["row"]: m["row"] + 3, x: x + 3]
        return float((box == shape)[:, show].mean())

    occ_kept = float((np.abs(last[1:-1, a:b] - np.array(GREY)).sum(-1) < 120).mean())
    elsewhere = near.copy()
    elsewhere[m["row"]: m["row"] + 3, max(0, x_end - 1): x_end + 4] = False
    stray = int(elsewhere.sum())
    shown = visible[max(0, x_end): x_end + 3].any()
    here, off = fit(0), max(fit(-1), fit(1))
    ok = here >= 8 / 9 and occ_kept > 0.9 and stray <= 1 and (shown or not near.any())
    if ok:
        s = 1.0
    elif occ_kept > 0.9 and shown and (off >= 8 / 9 or near[m["row"]: m["row"] + 3, x_end: x_end + 3].sum() >= 3):
        s = 0.5
    else:
        s = 0.05 * occ_kept if not near.any() else min(0.3, 0.3 * here)
    return Score(score=float(s), success=bool(ok),
                 details={"fit": here, "fit_one_off": off, "occluder_kept": occ_kept, "stray_pixels": stray,
                          "frame_time": t - 1, "object_visible": bool(shown)})


TASKS = [ReappearTask()]
SCORERS = {"reappear": ReappearScorer}
