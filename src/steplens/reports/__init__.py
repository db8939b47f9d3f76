"""What people look at: the self-contained HTML report (`page`), the chain-of-steps viewer (`viewer`) and plots
(`plots`). The index of a folder of runs is `steplens.orchestrators.report_index`."""
