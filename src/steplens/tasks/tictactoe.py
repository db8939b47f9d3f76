"""Tic-tac-toe, win in one: X is to move and can win; the video draws one winning X. Any winning move is right.

A task with several right answers by construction: early x0_hat can hold several candidate moves (the study's
multi-path exploration and superposition) before the sampler commits to one.

Board: 4 x 4 cells, three in a row (a row, a column or a diagonal of three adjacent cells) wins. (Until
2026-12 the board was 3 x 3: about 300 distinct boards at the default difficulty, too few to hold any out of
training; the 4 x 4 board has tens of thousands, so a held-out board is one the model never saw.)

Picture (native pixels): a 25 x 25 board, black grid lines one pixel wide (border included), white 5 x 5 cells;
X is a red diagonal cross, O a blue ring. Frame 0 is the board; later frames draw the winning X stroke by
stroke; the last frame holds it whole.

Difficulty knob `size`: how many winning moves the board offers (1: one right answer; 2 or 3: several; default
2). Scorer `tictactoe`: success when exactly one new X stands in a cell that wins and nothing else changed;
score 1 then, 0.3 for one new X in a cell that does not win, else at most 0.05 (nothing drawn, a flat frame,
several marks, a changed board).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import product

import numpy as np

from .contract import Candidate, Score
from .rules import RuleBasedScorer
from .sample import Sample

CELL, LINE = 5, 1
N, ROW = 4, 3  # a 4 x 4 board; three in a row wins
SIDE = N * (CELL + LINE) + LINE  # 25
WHITE, BLACK = np.array([255, 255, 255], np.uint8), np.array([0, 0, 0], np.uint8)
RED, BLUE = np.array([255, 0, 0], np.uint8), np.array([0, 0, 255], np.uint8)
PROMPT = "x to move: draw the winning mark, three in a row"
CELLS = list(product(range(N), range(N)))
LINES = [[(r + i * dr, c + i * dc) for i in range(ROW)] for r, c in CELLS for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1))
         if 0 <= r + (ROW - 1) * dr < N and 0 <= c + (ROW - 1) * dc < N]
X_STROKES = [[(i, i) for i in range(CELL)], [(i, CELL - 1 - i) for i in range(CELL)]]
X_PIXELS = list(dict.fromkeys(p for s in X_STROKES for p in s))
O_PIXELS = [(0, j) for j in range(1, 4)] + [(4, j) for j in range(1, 4)] + [(i, 0) for i in range(1, 4)] + \
           [(i, 4) for i in range(1, 4)]
MIN_WINS, MAX_WINS, DEFAULT_WINS = 1, 3, 2
DEFAULT_FRAMES = 3


def cell_origin(cell: tuple[int, int]) -> tuple[int, int]:
    return LINE + cell[0] * (CELL + LINE), LINE + cell[1] * (CELL + LINE)


def winner(board: dict) -> str | None:
    for line in LINES:
        marks = {board.get(c) for c in line}
        if len(marks) == 1 and None not in marks:
            return marks.pop()
    return None


def winning_moves(board: dict, player: str = "X") -> list[tuple[int, int]]:
    empty = [c for c in CELLS if c not in board]
    return [c for c in empty if winner({**board, c: player}) == player]


def render(board: dict, extra: dict | None = None) -> np.ndarray:
    img = np.empty((SIDE, SIDE, 3), np.uint8)
    img[:] = WHITE
    for k in range(N + 1):
        img[k * (CELL + LINE)] = BLACK
        img[:, k * (CELL + LINE)] = BLACK
    for cell, mark in {**board, **(extra or {})}.items():
        r0, c0 = cell_origin(cell)
        for dr, dc in (X_PIXELS if mark == "X" else O_PIXELS):
            img[r0 + dr, c0 + dc] = RED if mark == "X" else BLUE
    return img


def generate_board(seed: int, wins: int = DEFAULT_WINS) -> tuple[dict, list]:
    """A position reached by legal play, X to move, nobody has won, with exactly `wins` winning moves for X."""
    if isinstance(wins, bool) or not isinstance(wins, (int, np.integer)) or not MIN_WINS <= wins <= MAX_WINS:
        raise ValueError(f"tic-tac-toe difficulty (winning moves) must be an integer from {MIN_WINS} to {MAX_WINS}, "
                         f"got {wins!r}")
    rng = random.Random(f"tictactoe-{wins}-{seed}")
    while True:
        n = rng.choice([2, 4, 6, 8])  # pieces on the board, as many X as O: X to move
        board: dict = {}
        order = rng.sample(CELLS, n)
        for i, c in enumerate(order):
            board[c] = "X" if i % 2 == 0 else "O"
            if winner(board):
                break
        if winner(board) or len(board) != n:
            continue
        moves = winning_moves(board)
        if len(moves) == wins:
            return board, moves


@dataclass(frozen=True)
class TicTacToeTask:
    name: str = "tictactoe"
    aliases: tuple[str, ...] = ("tic-tac-toe",)
    default_size: int = DEFAULT_WINS
    sizes: tuple[int, int] = (MIN_WINS, MAX_WINS)
    harder: int = -1  # the knob counts winning moves: fewer right answers, harder
    default_frames: int = DEFAULT_FRAMES
    scorer: str = "tictactoe"

    @property
    def palette(self) -> np.ndarray:
        return np.stack([WHITE, BLACK, RED, BLUE])

    def sample(self, seed: int, size: int | None = None, frames: int | None = None, idx: int | None = None) -> Sample:
        from ..io.video import check_frames

        wins = self.default_size if size is None else size
        frames = check_frames(self.default_frames if frames is None else frames)
        board, moves = generate_board(seed, wins)
        move = random.Random(f"tictactoe-move-{seed}").choice(sorted(moves))
        first = render(board)
        r0, c0 = cell_origin(move)
        video = np.repeat(first[None], frames, axis=0)
        for t in range(1, frames):
            shown = X_PIXELS[: round(len(X_PIXELS) * t / (frames - 1))]
            for dr, dc in shown:
                video[t, r0 + dr, c0 + dc] = RED
        meta = {"task": self.name, "seed": int(seed), "winning_moves": [list(m) for m in sorted(moves)],
                "drawn_move": list(move), "board": {f"{r},{c}": m for (r, c), m in sorted(board.items())}}
        return Sample(task=self.name, first_frame=first, prompt=PROMPT, frames=frames, meta=meta,
                      ground_truth=video, idx=idx, seed=int(seed), key=None if idx is None else f"{self.name}/{idx:05d}")

    def answer_region(self, sample: Sample) -> np.ndarray:
        """Every empty cell where X wins: all right answers, not only the one the ground truth draws."""
        board = read_board(sample.first_frame)
        region = np.zeros((SIDE, SIDE), bool)
        for cell in winning_moves(board):
            r0, c0 = cell_origin(cell)
            region[r0: r0 + CELL, c0: c0 + CELL] = True
        return region

    def candidates(self, sample: Sample) -> list[Candidate]:
        """Every right answer: the red X drawn in each cell where X wins."""
        out = []
        for cell in winning_moves(read_board(sample.first_frame)):
            frame = sample.first_frame.copy()
            r0, c0 = cell_origin(cell)
            for dr, dc in X_PIXELS:
                frame[r0 + dr, c0 + dc] = RED
            out.append(Candidate(f"X at row {cell[0] + 1}, col {cell[1] + 1}", frame))
        return out

    def verify(self, video: np.ndarray, sample: Sample) -> Score:
        """The verifier (no answer read): the `tictactoe` scorer's own rules, which read the board from the first
        frame only (the winning moves are solved from it): the same score and success, by construction."""
        return TicTacToeScorer().score(video, sample)

    def check(self, video: np.ndarray, sample: Sample) -> Score:
        """The checker (validity rules only, nothing solved): one new X in an empty cell, the board and grid kept,
        and X now has three in a row (read from the last frame). It never lists the winning moves, yet decides as the
        verifier does: a move wins or not, visibly. Score 1 then, 0.3 for one legal X that does not win, else 0."""
        first = _native(sample.first_frame)
        last = _native(np.asarray(video)[-1])
        before, after = read_board(first), read_board(last)
        new = [c for c in after if c not in before]
        kept = all(after.get(c) == m for c, m in before.items())
        legal = kept and len(new) == 1 and after[new[0]] == "X" and _grid_kept(first, last) > 0.95
        ok = legal and winner(after) == "X"
        return Score(score=1.0 if ok else 0.3 if legal else 0.0, success=bool(ok),
                     details={"new_marks": [list(c) for c in new], "board_kept": bool(kept), "strength": "checker"})

    def check_partial(self, video: np.ndarray, sample: Sample) -> Score:
        """The checker on a video not over yet (its last frame; `partial_checks` judges every frame with it): the
        board and grid kept, at most one empty cell drawn in, only on the X pattern and in red (an X being drawn
        stroke by stroke, not an O), and that cell, as an X, makes three in a row (read off the board, as `check`
        reads the finished X; nothing else solved). A frame with nothing drawn yet passes."""
        first, frame = _native(sample.first_frame), _native(np.asarray(video)[-1])
        before, now = read_board(first), read_board(frame)
        kept = all(now.get(c) == m for c, m in before.items()) and _grid_kept(first, frame) > 0.95
        drawn = [c for c in CELLS if c not in before and len(_inked(frame, c)) >= 2]  # one stray pixel is noise
        cell = drawn[0] if len(drawn) == 1 else None
        on_x = cell is not None and _inked(frame, cell) <= set(X_PIXELS) and _red(frame, cell) == _inked(frame, cell)
        wins = on_x and winner({**before, cell: "X"}) == "X"
        ok = kept and (not drawn or wins)
        return Score(score=float(ok), success=bool(ok),
                     details={"board_kept": bool(kept), "cells_drawn": [list(c) for c in drawn],
                              "on_x_pattern": bool(on_x), "would_win": bool(wins), "strength": "checker",
                              "partial": True})

    def validate(self, sample: Sample) -> None:
        if sample.first_frame.shape[:2] != (SIDE, SIDE):
            raise ValueError(f"{sample.name}: a tic-tac-toe first frame is {SIDE}x{SIDE} pixels (or an integer "
                             f"upscale), got {sample.first_frame.shape[1]}x{sample.first_frame.shape[0]}")
        board = read_board(sample.first_frame)
        if not winning_moves(board) or winner(board):
            raise ValueError(f"{sample.name}: the board has no winning move for X (or is already won)")


def _native(frame: np.ndarray) -> np.ndarray:
    from ..regions import downscale

    h = frame.shape[0]
    if frame.shape[:2] != (h, h) or h % SIDE:
        raise ValueError(f"a tic-tac-toe frame is {SIDE}x{SIDE} pixels or an integer upscale, got {frame.shape[1]}x{h}")
    return downscale(frame, h // SIDE)


def cell_marks(frame: np.ndarray) -> dict:
    """(r, c) -> (red pixels of the X pattern, blue pixels of the O pattern) of a native frame, as fractions."""
    f = frame.astype(np.int32)
    red = (f[..., 0] > 160) & (f[..., 1] < 110) & (f[..., 2] < 110)
    blue = (f[..., 2] > 160) & (f[..., 0] < 110) & (f[..., 1] < 110)
    out = {}
    for cell in CELLS:
        r0, c0 = cell_origin(cell)
        out[cell] = (np.mean([red[r0 + a, c0 + b] for a, b in X_PIXELS]),
                     np.mean([blue[r0 + a, c0 + b] for a, b in O_PIXELS]))
    return out


def _inked(frame: np.ndarray, cell: tuple[int, int]) -> set:
    """The pixels (dr, dc) of a cell of a native frame that are not white (within the grid's tolerance)."""
    r0, c0 = cell_origin(cell)
    block = np.abs(frame[r0: r0 + CELL, c0: c0 + CELL].astype(int) - WHITE.astype(int)).sum(-1) >= 120
    return {(int(a), int(b)) for a, b in zip(*np.nonzero(block))}


def _red(frame: np.ndarray, cell: tuple[int, int]) -> set:
    """The pixels (dr, dc) of a cell of a native frame that are red (the X's colour, as `cell_marks` reads it)."""
    r0, c0 = cell_origin(cell)
    f = frame[r0: r0 + CELL, c0: c0 + CELL].astype(np.int32)
    red = (f[..., 0] > 160) & (f[..., 1] < 110) & (f[..., 2] < 110)
    return {(int(a), int(b)) for a, b in zip(*np.nonzero(red))}


def read_board(frame: np.ndarray) -> dict:
    marks = cell_marks(_native(np.asarray(frame)))
    return {c: ("X" if x > 0.6 else "O") for c, (x, o) in marks.items() if x > 0.6 or o > 0.6}


def _grid_kept(first: np.ndarray, last: np.ndarray) -> float:
    """The share of pixels outside the cells (the grid) that keep their colour, within a tolerance for lossy frames."""
    grid = np.ones((SIDE, SIDE), bool)
    for cell in CELLS:
        r0, c0 = cell_origin(cell)
        grid[r0: r0 + CELL, c0: c0 + CELL] = False
    return float((np.abs(last.astype(int) - first.astype(int)).sum(-1)[grid] < 120).mean())


class TicTacToeScorer(RuleBasedScorer):
    name = "tictactoe"
    tasks = ("tictactoe",)

    def score(self, video: np.ndarray, sample: Sample) -> Score:
        first = _native(sample.first_frame)
        last = _native(np.asarray(video)[-1])
        before, after = read_board(first), read_board(last)
        new = [c for c in after if c not in before]
        kept = all(after.get(c) == m for c, m in before.items())
        grid_kept = _grid_kept(first, last)
        wins = winning_moves(before)
        ok = kept and len(new) == 1 and after[new[0]] == "X" and new[0] in wins and grid_kept > 0.95
        if ok:
            s = 1.0
        elif kept and len(new) == 1 and after[new[0]] == "X" and grid_kept > 0.95:
            s = 0.3  # a legal move that does not win
        else:
            s = 0.05 * grid_kept * kept if not new else 0.0
        return Score(score=float(s), success=bool(ok),
                     details={"new_marks": [list(c) for c in new], "winning_moves": [list(c) for c in wins],
                              "board_kept": bool(kept), "grid_kept": grid_kept})


TASKS = [TicTacToeTask()]
SCORERS = {"tictactoe": TicTacToeScorer}
