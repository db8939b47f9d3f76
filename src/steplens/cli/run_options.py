"""The bundles of how an experiment runs (as steplens.cli.options): the latent ensemble's options, --plan's, and the
own options of compare, study and probe, each listed in its --help panel and checked before any model loads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, List, Optional

from .options import _opt

COMPARE_METHODS = ("steps-x", "vote", "best-consensus", "best-oracle", "ensemble", "ensemble-update", "ensemble-x0",
                   "ensemble-vote")
SEARCH_METHODS = ("best-of-n", "early-beam", "smc")


def _ints(v: Optional[str], option: str) -> Optional[list[int]]:
    from .app import _ints as ints

    return ints(v, option)


@dataclass(frozen=True)
class EnsembleOptions:
    """Where and how strongly the latent ensemble averages its seeds: --ens-blocks, --ens-steps, --alpha."""

    PANEL: ClassVar[str] = "Ensemble"

    ens_blocks: Optional[str] = _opt(None, "--ens-blocks", help="ensemble blocks, e.g. 4,5 (default: the middle "
                                                                "quarter)")
    ens_steps: Optional[str] = _opt(None, "--ens-steps", help="ensemble steps, e.g. 0,1,2 (default: the first 15%)")
    alpha: float = _opt(1.0, "--alpha", help="ensemble strength in [0, 1]: 0 = independent seeds, 1 = replaced by "
                                             "the mean")

    def check(self) -> "EnsembleOptions":
        """--alpha in [0, 1]; the blocks and steps comma-separated integers."""
        from ..io import checks

        checks.number("--alpha", self.alpha, 0, 1)
        _ints(self.ens_blocks, "--ens-blocks"), _ints(self.ens_steps, "--ens-steps")
        return self

    def config(self, **kw):
        """steplens.methods.ensemble.EnsembleConfig with these blocks, steps and strength (`kw`: N seeds, target)."""
        from ..methods.ensemble import EnsembleConfig

        return EnsembleConfig(blocks=_ints(self.ens_blocks, "--ens-blocks"),
                              steps=_ints(self.ens_steps, "--ens-steps"), alpha=self.alpha, **kw)


@dataclass(frozen=True)
class PlanOptions:
    """The bill before the run: --plan, --sec-per-nfe, --json."""

    PANEL: ClassVar[str] = "Plan"

    plan: bool = _opt(False, "--plan", help="print the jobs (samples x conditions), the NFE with and without prefix "
                                            "reuse and device-hours (with --sec-per-nfe) per part, and stop: nothing "
                                            "runs (a diffusers:PATH model is not loaded; the embedded model is, to read its "
                                            "steps and time one forward)")
    sec_per_nfe: Optional[float] = _opt(None, "--sec-per-nfe", help="seconds per model forward evaluation (one step, "
                                                                    "sample and CFG branch) for --plan's "
                                                                    "device-hours, e.g. 4.1 (VBVR-Wan2.2, 480p, 81 "
                                                                    "frames, one H100: 328 s / (40 steps x 2))")
    as_json: bool = _opt(False, "--json", help="with --plan: print the plan as JSON ({\"parts\": [...], \"nfe\", "
                                               "\"nfe_without_reuse\", \"device_hours\"}) and nothing else")

    def check(self) -> "PlanOptions":
        """--sec-per-nfe a positive number; --json only with --plan."""
        from ..orchestrators.plan import check_sec_per_nfe

        check_sec_per_nfe(self.sec_per_nfe)
        if self.as_json and not self.plan:
            raise ValueError("--json prints the plan: it goes with --plan")
        return self


@dataclass(frozen=True)
class CompareOptions:
    """Which methods `compare` runs: --n-seeds, --methods, --budget, --search-methods, --beside-verifiers."""

    PANEL: ClassVar[str] = "Methods"

    n_seeds: str = _opt("2,3,4,8", "--n-seeds", help="comma-separated N values")
    methods: str = _opt(",".join(COMPARE_METHODS), "--methods", help="the multi-seed methods, comma-separated")
    budget: Optional[str] = _opt(None, "--budget", help="compute budgets in units of one plain run's NFE, e.g. "
                                                        "1,2,4,8: the multi-seed methods at N = each budget >= 2 "
                                                        "(replaces --n-seeds) and the search methods at each budget; "
                                                        "adds the accuracy-vs-NFE table and plot per family and the "
                                                        "step-k AUC")
    search_methods: str = _opt(",".join(SEARCH_METHODS), "--search-methods",
                               help="with --budget: best-of-n, early-beam, smc, chain (tasks with continue_from), "
                                    "backtrack (a model given K leading frames, a verifier that judges frames); "
                                    "their options are the Search panel's")
    beside_verifiers: Optional[str] = _opt(None, "--beside-verifiers",
                                           help="with --budget: further verifiers, comma-separated, each picking "
                                                "among best-of-n's particles at every budget without a forward "
                                                "(method 'best-of-n [V]', paired against --verifier's best-of-n): "
                                                "e.g. task beside checker (`steplens verifiers`)")

    def check(self) -> "CompareOptions":
        """--n-seeds and --budget comma-separated integers, --n-seeds not empty."""
        self.n_list()
        _ints(self.budget, "--budget")
        return self

    def n_list(self) -> list[int]:
        n_list = _ints(self.n_seeds, "--n-seeds")
        if not n_list:
            raise ValueError(f"--n-seeds {self.n_seeds!r}: give comma-separated N values, e.g. 2,3,4,8")
        return n_list


@dataclass(frozen=True)
class StudyOptions:
    """What a study measures beyond its samples: its parts, their sample counts, the multi-seed methods, a baseline,
    the training log."""

    PANEL: ClassVar[str] = "Study"

    sweep_count: Optional[int] = _opt(None, "--sweep-count", min=1, help="held-out samples per condition of the "
                                                                         "steps and frames sweep (default: --count)")
    compare_count: Optional[int] = _opt(None, "--compare-count", min=1, help="held-out samples per multi-seed method "
                                                                             "(default: --count)")
    probe_count: int = _opt(100, "--probe-count", min=1, help="samples per intervention probe (noise, propagation, "
                                                              "energy, swap)")
    parts: Optional[str] = _opt(None, "--parts", help="comma-separated subset of: solve, sweep, noise, propagation, "
                                                      "energy, swap, compare (default: all)")
    compare_families: int = _opt(2, "--compare-families", min=0, help="compare the multi-seed methods on this many "
                                                                      "families, those where one seed is weakest")
    n_seeds: int = _opt(3, "--n-seeds", min=2, help="N of the multi-seed methods")
    baseline: Optional[str] = _opt(None, "--baseline", help="another embedded model (e.g. tiny-maze) measured on the "
                                                            "families it was trained on, beside; and (part chains) "
                                                            "the two chains of steps at matched σ, each model at its "
                                                            "own sampling (a few-step student against its teacher)")
    train_log: Optional[List[Path]] = _opt(None, "--train-log", help="the model's training log (log.jsonl): training "
                                                                     "cost per family; repeat it for a training in "
                                                                     "stages, in their order")

    def check(self) -> "StudyOptions":
        """Every training log readable; --parts known, chains with a baseline."""
        from ..io import checks
        from ..orchestrators.study import check_chains, check_parts, read_train_log

        for log in self.train_log or []:
            checks.in_file(log, "--train-log")
            read_train_log(log)  # every record readable, before the model loads
        check_chains(check_parts(self.parts), self.baseline, self.parts)  # an empty or unknown --parts, chains
        return self


@dataclass(frozen=True)
class ProbeOptions:
    """The options of one probe each (refused with any other probe, by the command, which knows the probe)."""

    PANEL: ClassVar[str] = "Probe"

    frame_noise: Optional[str] = _opt(None, "--frame-noise", help="noise probe: one-step (default: the same fresh "
                                                                  "noise at step k on one latent frame, at a few "
                                                                  "steps and frames) | every-step (one frame "
                                                                  "replaced at every step, steplens' earlier "
                                                                  "protocol)")
    n_seeds: Optional[int] = _opt(None, "--n-seeds", help="plan probe: seeds per sample (default 4; plan diversity "
                                                          "needs 2 or more)")
    teacher: Optional[str] = _opt(None, "--teacher", help="plan probe: a model measured beside this one on the same "
                                                          "samples and seeds, at its own sampling, at the steps "
                                                          "nearest in σ (a student's teacher)")

    def check(self) -> "ProbeOptions":
        """Nothing to refuse without the probe's name: the command checks each option against its probe."""
        return self
