"""Orchestrators: the commands' whole jobs, built on the layers below them. The study (every probe on every family of
a model, in one folder: `study`, its bill `study_plan`), the plan of any command (`plan`), distilled students against
their teachers at matched σ (`chains`), running a model over a folder of samples (`runner`), the demo (`demo`,
`demo_search`) and the index of a folder of runs with the study's claims judged (`report_index`). Nothing below
imports them."""
