"""Classification metrics over string labels: accuracy, macro-F1, per-label precision, recall
and F1, and the confusion matrix (rows: reference label, columns: predicted label).

An `evaluate` metric module shipped with autotune and loaded from its folder, so nothing is
fetched from a hub.
"""

import datasets
import evaluate

_DESCRIPTION = __doc__
_KWARGS = """
Args:
    predictions (list of str): predicted labels.
    references (list of str): true labels.
    labels (list of str): every label, in the order of the confusion matrix.
"""


class Classification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, labels):
        index = {label: i for i, label in enumerate(labels)}
        matrix = [[0] * len(labels) for _ in labels]
        for predicted, true in zip(predictions, references, strict=True):
            if true in index and predicted in index:
                matrix[index[true]][index[predicted]] += 1
        per_label = {}
        for i, label in enumerate(labels):
            tp = matrix[i][i]
            predicted = sum(row[i] for row in matrix)
            actual = sum(1 for r in references if r == label)
            precision = tp / predicted if predicted else 0.0
            recall = tp / actual if actual else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            per_label[label] = {
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "support": actual,
            }
        correct = sum(p == r for p, r in zip(predictions, references, strict=True))
        return {
            "accuracy": correct / len(references),
            "macro_f1": sum(v["f1"] for v in per_label.values()) / len(labels),
            "per_label": per_label,
            "confusion_matrix": {"labels": list(labels), "matrix": matrix},
        }
