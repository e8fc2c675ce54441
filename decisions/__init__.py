"""Every rule that turns figures into a decision, written once, as pure functions.

No I/O and no Optuna here: the search applies these rules to the trials it reads
(search/study_view.py), the reports render what they decided, the benches import them. A new
metric or deployment choice is taught here, once.

- candidate.py: a completed trial as the rules see it (figures, evidence, violations);
- dominance.py: "at least as good everywhere, better somewhere", plain and up to the noise;
- selection.py: the noise-aware tiers and the pick among the top tier's ties;
- rungs.py: successive halving's rungs, brackets, ranking and promotion;
- median.py: the median rule on checkpoint losses;
- racing.py: the finished trial that dominates a candidate scored on a prefix;
- budget.py: distinct configurations and the study's plan (budget cut, halving off), repeats of
  completed configurations, the room left in the budget;
- derived.py: figures derived from others (gain_over_base, quant_drop), one matching rule.
"""
