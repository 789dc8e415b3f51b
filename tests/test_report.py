"""fnn.report: the numbers of `fnn evaluate`'s per-class table equal scikit-learn's classification_report."""
import numpy as np
import pytest
from sklearn import metrics as skm

from fnn import report

NAMES = ("zero", "one", "two", "three")


def test_class_table_equals_scikit_learn_classification_report():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200).astype(np.int32)                      # class 3 never occurs
    logits = rng.normal(size=(200, 4)) - 5.0 * np.eye(4)[:, 2]           # class 2 is never predicted
    found = report.scores(logits, labels)
    table = report.class_table(found, NAMES)
    want = skm.classification_report(labels, logits.argmax(1), labels=range(4), target_names=NAMES,
                                     output_dict=True, zero_division=0)
    rows = {line.rsplit(None, 4)[0]: line.rsplit(None, 4)[1:] for line in table.splitlines()[1:] if line.strip()}
    assert list(rows) == [*NAMES, "macro avg", "weighted avg"]
    for name, (precision, recall, f1, support) in rows.items():
        expected = want[name]
        assert [float(precision), float(recall), float(f1)] == pytest.approx(
            [expected["precision"], expected["recall"], expected["f1-score"]], abs=5e-5)
        assert int(support) == expected["support"]
    assert float(found["accuracy"]) == pytest.approx(want["accuracy"])
    matrix = skm.confusion_matrix(labels, logits.argmax(1), labels=range(4))
    assert np.asarray(found["confusion"]).tolist() == matrix.tolist()
    assert rows["two"][0] == "0.0000" and rows["three"][1] == "0.0000"     # zero divisions count 0


def test_plot_confusion_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = report.plot_confusion(np.arange(16).reshape(4, 4), NAMES, tmp_path / "confusion.png", "title")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
