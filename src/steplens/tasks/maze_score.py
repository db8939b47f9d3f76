"""Rule-based maze scorer: is the orange path in a frame one 4-connected path from start to goal?"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from .contract import Score
from .grid import COLOURS, FREE, GOAL, GOAL2, PATH, START, WALL, components, native_labels, neighbours
from .maze import DEFAULT_FRAMES, Maze, distances, render_video, shortest_pixel_path
from .sample import Sample

# Score weights, in the spirit of VBVR-Bench's maze scorer (which a static copy of the first frame
# passes with 0.71); here a frame without any path pixel scores at most the walls term (the floor, 0.05),
# and so does a frame that does not read as a maze drawing at all (see UNREADABLE).
WEIGHTS = {"off_walls": 0.45, "reaches_ends": 0.30, "one_component": 0.20, "walls_kept": 0.05}
# A frame whose native pixels lie on average farther than this from the nearest palette colour (RGB distance,
# of 441 at most) is not a maze drawing (a flat grey frame: 180): it scores 0 unless it is a success.
UNREADABLE = 64.0


@dataclass
class MazeScore(Score):
    """score: 1.0 for a correct path, partial credit otherwise; success: orange + start + goal form one simple
    4-connected path from start to goal, off the walls; shortest: success with a shortest path."""

    shortest: bool = False


def _locate(labels: np.ndarray, label: int, what: str) -> tuple[int, int]:
    where = np.argwhere(labels == label)
    if len(where) == 0:
        side = labels.shape[0]
        raise ValueError(f"image of {side}x{side} native pixels is not a maze frame: it has no {what} pixel")
    if len(where) > 1:  # lossy input: take the pixel most central to the label's blob
        where = where[np.argmin(((where - where.mean(0)) ** 2).sum(1))][None]
    return int(where[0][0]), int(where[0][1])


def score_labels(frame: np.ndarray, ref: np.ndarray, goal_label: int = GOAL) -> MazeScore:
    """Score native label grids: `frame` (the answer) against `ref` (the first frame)."""
    if frame.shape != ref.shape:
        raise ValueError(f"frame grid {frame.shape} and first-frame grid {ref.shape} differ")
    walls = ref == WALL
    start, goal = _locate(ref, START, "start (green)"), _locate(ref, goal_label, "goal")
    path = frame == PATH
    path[start] = path[goal] = False
    on_wall = int((path & walls).sum())
    n_path = int(path.sum())
    s = path.copy()
    s[start] = s[goal] = True
    comps = components(s)
    degree = {p: sum(s[q] for q in neighbours(p, s.shape)) for p in zip(*np.nonzero(s))}
    simple = all(d == (1 if p in (start, goal) else 2) for p, d in degree.items())
    one = len(comps) == 1
    success = bool(n_path > 0 and on_wall == 0 and one and simple)
    free = ~walls
    best = shortest_pixel_path(free, start, goal)
    shortest = bool(success and int(s.sum()) == len(best))
    reaches = (any(path[q] for q in neighbours(start, s.shape)) + any(path[q] for q in neighbours(goal, s.shape))) / 2
    walls_kept = float((frame[walls] == WALL).mean()) if walls.any() else 1.0
    parts = {
        "off_walls": (1 - on_wall / n_path) if n_path else 0.0,
        "reaches_ends": float(reaches) if n_path else 0.0,
        "one_component": float(one) if n_path else 0.0,
        "walls_kept": walls_kept,
    }
    score = 1.0 if success else float(sum(WEIGHTS[k] * v for k, v in parts.items())) * 0.99
    details = {
        **parts,
        "path_pixels": n_path,
        "path_on_walls": on_wall,
        "components": len(comps),
        "simple_path": simple,
        "shortest_length": len(best),
        "start": list(start),
        "goal": list(goal),
        "endpoints_kept": bool(frame[start] == START and frame[goal] == goal_label),
    }
    return MazeScore(score=score, success=success, details=details, shortest=shortest)


def goal_label(prompt: str | None) -> int:
    """The goal a prompt names: blue -> the second goal, anything else -> the red goal."""
    return GOAL2 if prompt and "blue" in re.findall(r"[a-z]+", prompt.lower()) else GOAL


def score_frame(frame: np.ndarray, first_frame: np.ndarray | None = None, goal_label: int = GOAL) -> MazeScore:
    """Score an RGB frame (native or integer-upscaled) against the maze's first frame.

    Without `first_frame`, walls, start and goal are read from the frame itself.
    """
    ref, _ = native_labels(first_frame if first_frame is not None else frame)
    n = (ref.shape[0] - 1) // 2
    labels, k = native_labels(frame, n=n)
    if first_frame is None:
        ref = np.where(labels == PATH, FREE, labels)
    out = score_labels(labels, ref, goal_label)
    means = np.asarray(frame, np.float32).reshape(ref.shape[0], k, ref.shape[1], k, 3).mean(axis=(1, 3))
    off_palette = float(np.sqrt(((means - COLOURS[labels]) ** 2).sum(-1)).mean())
    out.details["palette_distance"] = off_palette
    if off_palette > UNREADABLE and not out.success:
        out.score = 0.0
    return out


def verify_frame(frame: np.ndarray, first_frame: np.ndarray, goal: int = GOAL) -> Score:
    """The maze verifier (the `verify` hook of maze, maze-two-goals and maze-loops): reads only the first frame
    (walls, start, goals) and which goal to reach. Success: the frame's orange path is one simple 4-connected
    path from the start to that goal, off the walls, and a shortest one (computed from the first frame). Score:
    1 then; a valid path longer than the shortest 0.5 + 0.5 * shortest / its length; any other frame half the
    maze scorer's partial credit (< 0.5, with its floor): a search ranks shortest > valid > invalid."""
    s = score_frame(frame, first_frame, goal)
    drawn = s.details["path_pixels"] + 2
    best = s.details["shortest_length"]
    if s.shortest:
        score = 1.0
    elif s.success:
        score = 0.5 + 0.5 * best / max(drawn, 1)
    else:
        score = 0.5 * s.score
    return Score(score=float(score), success=bool(s.shortest),
                 details={**s.details, "valid_path": s.success, "shortest": s.shortest, "path_length": drawn})


def check_frame(frame: np.ndarray, first_frame: np.ndarray, goal: int = GOAL) -> Score:
    """The maze checker (the `check` hook of the mazes): validity rules only, nothing solved. Success: the frame's
    orange path is one simple 4-connected path from the start to the goal the prompt names, off the walls (what a
    user sees at a glance); how long it is against the shortest path is not asked (nothing is solved: no distances).
    In a perfect maze every valid path is the shortest, so it decides as the verifier does; in a maze with loops it
    also accepts a longer valid path. Score: 1 then, else the maze scorer's partial credit (off the walls, reaching
    both ends, one piece, walls kept; with its floor)."""
    s = score_frame(frame, first_frame, goal)
    details = {k: v for k, v in s.details.items() if k != "shortest_length"}  # the solver's number, not ours
    return Score(score=float(1.0 if s.success else s.score), success=bool(s.success),
                 details={**details, "valid_path": s.success, "strength": "checker"})


def check_partial_frame(frame: np.ndarray, first_frame: np.ndarray, goal: int = GOAL) -> Score:
    """The maze checker on a frame of a video that is not over yet (the `check_partial` hook of the mazes): validity
    rules only, nothing solved (no distances). Success: what is drawn so far can still become a valid path, i.e. its
    orange pixels are off the walls and form one simple chain growing from the start (each pixel has one way on; a
    fork, a loop back or a stroke not joined to the start is rejected) whose tip can still reach the goal through
    open pixels the chain has not used (a turn into a dead end of a perfect maze is rejected there: what a user sees
    by following the corridors); nothing drawn passes (the path has not started). Score: 1 then, else 0."""
    ref, _ = native_labels(first_frame)
    labels, _ = native_labels(frame, n=(ref.shape[0] - 1) // 2)
    start, end = _locate(ref, START, "start (green)"), _locate(ref, goal, "goal")
    path = labels == PATH
    path[start] = path[end] = False
    on_wall = int((path & (ref == WALL)).sum())
    chain, came, fork = [start], None, False
    while True:
        p = chain[-1]
        drawn = [q for q in neighbours(p, ref.shape) if path[q] and q != came and q not in chain]
        if len(drawn) > 1:
            fork = True
        if len(drawn) != 1:
            break
        came = p
        chain.append(tuple(int(x) for x in drawn[0]))
    detached = int(path.sum()) - (len(chain) - 1)
    open_px = ref != WALL
    for p in chain[:-1]:
        open_px[p] = False
    reachable = bool(distances(open_px, chain[-1])[end] >= 0)
    ok = on_wall == 0 and not fork and detached == 0 and reachable
    return Score(score=float(ok), success=bool(ok),
                 details={"path_pixels": int(path.sum()), "path_on_walls": on_wall, "forked": fork,
                          "detached_pixels": detached, "goal_reachable": reachable, "strength": "checker",
                          "partial": True})


def checked_prefix(labels: np.ndarray, ref: np.ndarray, goal: int = GOAL) -> list[tuple[int, int]]:
    """The part of a drawn path a checker can vouch for without solving the maze: from the start, the orange pixels
    of `labels` the drawing commits to (one way on at each pixel), off the walls; it stops where the drawing forks,
    ends or leaves the open cells, and before the goal, then is cut back to a cell pixel. Unlike `verified_prefix` it
    keeps a prefix that heads into a dead end: no distance to the goal is known. [start] when nothing is drawn."""
    start, end = _locate(ref, START, "start (green)"), _locate(ref, goal, "goal")
    path = labels == PATH
    prefix, came, seen = [start], None, {start}
    while True:
        p = prefix[-1]
        drawn = [q for q in neighbours(p, ref.shape) if path[q] and ref[q] != WALL and q != came]
        if len(drawn) != 1 or drawn[0] == end or tuple(drawn[0]) in seen:
            break
        came = p
        prefix.append(tuple(int(x) for x in drawn[0]))
        seen.add(prefix[-1])
    while len(prefix) > 1 and not (prefix[-1][0] % 2 and prefix[-1][1] % 2):
        prefix.pop()
    return prefix


def verified_prefix(labels: np.ndarray, ref: np.ndarray, goal: int = GOAL) -> list[tuple[int, int]]:
    """The part of a drawn path the verifier can vouch for, from the first frame alone: from the start, the orange
    pixels of `labels` (the answer's native labels) the drawing commits to, each one pixel closer to the goal (so
    they lie on a shortest path, solved from `ref`, the first frame's labels), off the walls. It stops where the
    drawing forks (more than one orange pixel to go on to: the model has not chosen between them, and the right
    one is known only to the solver), where its one way on leaves the shortest paths, and before the goal; then it
    is cut back to a cell pixel (odd row and column). [start] when nothing is verified."""
    start, end = _locate(ref, START, "start (green)"), _locate(ref, goal, "goal")
    to_goal = distances(ref != WALL, end)
    path = labels == PATH
    prefix, came = [start], None
    while True:
        p = prefix[-1]
        drawn = [q for q in neighbours(p, ref.shape) if path[q] and ref[q] != WALL and q != came]
        if len(drawn) != 1 or drawn[0] == end or to_goal[drawn[0]] != to_goal[p] - 1:
            break
        came = p
        prefix.append(tuple(int(x) for x in drawn[0]))
    while len(prefix) > 1 and not (prefix[-1][0] % 2 and prefix[-1][1] % 2):
        prefix.pop()
    return prefix


def continue_maze(sample: Sample, frame: np.ndarray, task_name: str | None = None, strength: str = "solver") -> Sample:
    """The `continue_from` hook of the mazes: the start moves to the tip of the verified prefix of the path drawn
    in `frame` (`verified_prefix`); the walls stay, so the next link is an ordinary maze sample of the same task
    (the generator draws starts anywhere): first frame, prompt, frame count, a ground truth solved from the new
    start, metadata with `continued_from`, `prefix_pixels` (this link's progress) and `chain_prefix` (the native
    pixels from the first link's start to the new start, all links together). Since the tip lies on a shortest
    path, a shortest path from it completes the prefix to a shortest path of the first maze, never crossing it:
    the chain is solved when its last link is. Reads only the first frame, prompt and frame count. The same maze
    when nothing is verified; the start next to the goal when the whole path is.

    `strength="checker"`: the prefix a checker vouches for (`checked_prefix`: connected, off the walls, unforked; no
    distances), which may head into a dead end: a chain driven by it can fail where the solver's succeeds."""
    if strength not in ("solver", "checker"):
        raise ValueError(f"a maze chain continues from a 'solver' or a 'checker' prefix, got strength {strength!r}")
    ref, _ = native_labels(sample.first_frame)
    n = (ref.shape[0] - 1) // 2
    try:
        labels, _ = native_labels(np.asarray(frame), n=n)
    except ValueError as e:
        raise ValueError(f"frame of shape {np.asarray(frame).shape} is not an answer to {sample.name} (a maze of "
                         f"{n}x{n} cells, {ref.shape[0]} pixels a side or an integer upscale): {e}") from None
    goal = goal_label(sample.prompt)
    prefix = (verified_prefix if strength == "solver" else checked_prefix)(labels, ref, goal)
    free = ref != WALL

    def cell(label: int):
        where = np.argwhere(ref == label)
        return (int(where[0][0]) // 2, int(where[0][1]) // 2) if len(where) else None

    tip = (prefix[-1][0] // 2, prefix[-1][1] // 2)
    two = cell(GOAL2) is not None
    m = Maze(n=n, seed=-1, free=free, start=tip, goal=cell(GOAL), goal2=cell(GOAL2),
             target="blue" if two and goal == GOAL2 else "red")
    video = render_video(m, sample.frames or DEFAULT_FRAMES)
    before = [list(p) for p in sample.meta.get("chain_prefix", [])[:-1]]
    meta = {**m.metadata(), "task": task_name or sample.task, "continued_from": sample.name,
            "prefix_pixels": len(prefix) - 1, "chain_prefix": before + [list(p) for p in prefix],
            "prefix_strength": strength}
    meta.pop("seed")
    return replace(sample, first_frame=video[0], prompt=sample.prompt, frames=len(video), meta=meta,
                   ground_truth=video, final=None, dir=None, video_frames=None)
