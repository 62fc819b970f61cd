"""Evaluation: per-digit outcomes of attacks over many digits (evaluate.py), Table 1 and its flags (table1.py), eps
sweeps (sweeps.py), the result files and the rule a re-run keeps rows by (results.py), what `explorer evaluate`
writes into them (reports.py), finished batches kept for resuming (batch_store.py) and who attacks them
(runners.py: this process or Ray), the converged evaluation (ensemble.py), robust accuracy against effort
(effort.py) and the gradient-masking lens (lens.py)."""
