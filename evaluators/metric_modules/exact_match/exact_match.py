"""Exact match: the fraction of predictions equal to their reference, after stripping spaces at
both ends.

An `evaluate` metric module shipped with autotune and loaded from its folder, so nothing is
fetched from a hub.
"""

import datasets
import evaluate

_KWARGS = """
Args:
    predictions (list of str): generated texts.
    references (list of str): expected texts.
"""


class ExactMatch(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        matches = sum(p.strip() == r.strip() for p, r in zip(predictions, references, strict=True))
        return {"exact_match": matches / len(references)}
