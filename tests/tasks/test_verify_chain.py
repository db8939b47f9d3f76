"""The `continue_from` task hook (the maze; maze-loops): the start moves to the tip of the drawn path's verified
prefix (the part the drawing commits to, on a shortest path); the walls stay as they were, so the result is an
ordinary maze sample (a random start, as the generator draws them) whose ground truth the scorer and the verifier
accept."""

import numpy as np
import pytest

from steplens.io.video import upscale
from steplens.tasks import Scorers, get_task, get_verifier, strip_sample

ORANGE, BLACK, GREEN = (255, 128, 0), (0, 0, 0), (0, 255, 0)


def _partial(sample, keep: int) -> np.ndarray:
    """The ground truth's final frame with only the first `keep` path pixels drawn."""
    final, first = sample.final_frame, sample.first_frame
    path = [tuple(p) for p in np.argwhere((final != first).any(-1))]
    # order the path pixels from the start by walking them
    start = tuple(np.argwhere((first == GREEN).all(-1))[0])
    order, left = [], set(path)
    p = start
    while left:
        nxt = [q for q in left if abs(q[0] - p[0]) + abs(q[1] - p[1]) == 1]
        p = nxt[0]
        order.append(p)
        left.remove(p)
    out = first.copy()
    for q in order[:keep]:
        out[q] = ORANGE
    return out, order


def _check_ordinary(task, s, new):
    task.validate(new)
    sc = Scorers().for_task(new.task)
    assert sc.score(new.ground_truth, new).success
    assert not sc.score(new.ground_truth[:1], new).success
    v = get_verifier("task")
    assert v.verify(new.ground_truth, strip_sample(new)).success
    assert new.prompt == s.prompt and new.frames == s.frames and new.task == s.task


@pytest.mark.parametrize("name", ["maze", "maze-two-goals", "maze-loops"])
@pytest.mark.parametrize("seed", range(8))
def test_continue_from_a_partial_path_starts_at_its_tip_and_keeps_the_walls(name, seed):
    task = get_task(name)
    s = task.sample(seed, size=6)
    _, order = _partial(s, 0)
    keep = 2 * (1 + seed % max(1, (len(order) - 1) // 2 - 1))  # an even number of pixels: ends on a cell
    keep = max(0, min(keep, len(order) - 1))  # the inner path has an odd count of pixels: keep stays even
    frame, order = _partial(s, keep)
    new = task.continue_from(strip_sample(s), upscale(frame, 3))  # reads only what a verifier may, any upscale
    _check_ordinary(task, s, new)
    tip = order[keep - 1] if keep else tuple(np.argwhere((s.first_frame == GREEN).all(-1))[0])
    assert (new.first_frame[tip] == GREEN).all()
    old_start = tuple(np.argwhere((s.first_frame == GREEN).all(-1))[0])
    walls = (s.first_frame == BLACK).all(-1)
    assert ((new.first_frame == BLACK).all(-1) == walls).all()  # the maze itself is unchanged
    if keep:
        assert (new.first_frame[old_start] == 255).all()  # the old start is a free pixel again
        assert new.meta["chain_prefix"][0] == list(old_start) and new.meta["chain_prefix"][-1] == list(tip)
    # the remaining path is the old one minus the prefix
    assert new.meta["shortest_path_length"] == s.meta["shortest_path_length"] - keep // 2


def test_continue_from_keeps_only_the_verified_prefix_of_a_wrong_path():
    task = get_task("maze")
    s = task.sample(4, size=7)
    frame, order = _partial(s, 4)
    ref = frame.copy()
    # a wrong turn after the verified part: orange into a free pixel off the shortest path, next to the tip
    tip = order[3]
    free = (s.first_frame == 255).all(-1)
    off = [q for q in ((tip[0] + 1, tip[1]), (tip[0] - 1, tip[1]), (tip[0], tip[1] + 1), (tip[0], tip[1] - 1))
           if free[q] and q not in order]
    if not off:
        pytest.skip("no dead end next to the tip in this maze")
    frame[off[0]] = ORANGE
    a = task.continue_from(s, frame)
    b = task.continue_from(s, ref)
    assert (a.first_frame == b.first_frame).all()


def test_continue_from_without_a_path_is_the_same_maze_and_a_full_path_leaves_one_step():
    task = get_task("maze")
    s = task.sample(2, size=5)
    same = task.continue_from(s, s.first_frame)
    assert (same.first_frame == s.first_frame).all()
    assert (same.ground_truth[-1] == s.final_frame).all()
    last = task.continue_from(s, s.final_frame)  # a whole path: the start moves next to the goal
    _check_ordinary(task, s, last)
    assert last.meta["shortest_path_length"] == 1


def test_continue_from_refuses_a_frame_of_another_size():
    task = get_task("maze")
    s = task.sample(2, size=5)
    with pytest.raises(ValueError, match="not an answer"):
        task.continue_from(s, np.zeros((12, 12, 3), np.uint8))


def test_a_chain_of_continuations_one_cell_at_a_time_reaches_the_goal():
    task = get_task("maze-loops")
    s = task.sample(5, size=7)
    links = [s]
    while links[-1].meta.get("shortest_path_length", s.meta["shortest_path_length"]) > 1:
        cur = links[-1]
        frame, _ = _partial(cur, 2)  # one cell further along its own ground truth
        links.append(task.continue_from(strip_sample(cur), frame))
        _check_ordinary(task, s, links[-1])
    assert len(links) == s.meta["shortest_path_length"]


def test_the_verified_prefix_stops_where_the_drawing_forks():
    """A drawing that paints a side branch beside the right route has not committed to the route there: the
    verified prefix (and so the chain's progress) stops at the fork, even though the right way is among the drawn
    pixels. Otherwise a model that floods every corridor would be led to the goal by the verifier's own solution."""
    task = get_task("maze")
    for seed in range(40):
        s = task.sample(seed, size=7)
        frame, order = _partial(s, len(order_of(s)) - 1)
        free = (s.first_frame == 255).all(-1)
        fork = next(((i, q) for i, p in enumerate(order[:-1]) if i % 2 == 1 and i > 2
                     for q in ((p[0] + 1, p[1]), (p[0] - 1, p[1]), (p[0], p[1] + 1), (p[0], p[1] - 1))
                     if free[q] and q not in order), None)
        if fork:
            break
    i, q = fork
    frame[q] = ORANGE  # a painted side branch at path pixel i
    new = task.continue_from(s, frame)
    tip = tuple(new.meta["chain_prefix"][-1])
    assert order.index(tip) <= i  # nothing past the fork is vouched for
    full = task.continue_from(s, _partial(s, len(order) - 1)[0])  # the same route without the branch goes on
    assert order.index(tuple(full.meta["chain_prefix"][-1])) > i


def order_of(sample):
    return _partial(sample, 0)[1]


def test_a_chain_prefix_accumulates_over_links_from_the_first_start():
    task = get_task("maze")
    s = task.sample(3, size=6)
    order = order_of(s)
    a = task.continue_from(strip_sample(s), _partial(s, 2)[0])
    b = task.continue_from(strip_sample(a), _partial(a, 2)[0])
    start = list(np.argwhere((s.first_frame == GREEN).all(-1))[0])
    assert b.meta["chain_prefix"] == [start] + [list(p) for p in order[:4]]
