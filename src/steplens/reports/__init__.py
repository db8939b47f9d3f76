"""What people look at: the self-contained HTML report (`page`), the chain-of-steps viewer (`viewer`), plots
(`plots`) and the index of a folder of runs with the study's claims judged (`index`)."""
