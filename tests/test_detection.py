"""fnn.detection, fnn.losses.iou/giou and fnn.models.detector: canvases (deterministic, boxes
around the painted pixels), grid encoding and decoding by hand, the detection loss's hand gradient
vs autodiff (alone and through the whole detector), box IoU and the box losses vs torchvision,
NMS vs a brute-force reference, mAP vs a brute-force reference and hand-computed edge cases."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import detection
from fnn.gradcheck import relative_error
from fnn.losses import giou, iou

KEY = jax.random.PRNGKey(0)


def _items():
    """Six 28x28 items: a bright rectangle each, rows 4+i to 20, columns 6 to 18+i; labels 0..5."""
    images = np.zeros((6, 28, 28, 1), np.float32)
    for i in range(6):
        images[i, 4 + i:21, 6:19 + i] = 1.0
    return images, np.arange(6)


@pytest.fixture(scope="module")
def drawn():
    images, labels = _items()
    return detection.canvases(KEY, images, labels, 12)


def test_tight_boxes_of_known_rectangles():
    np.testing.assert_array_equal(detection.tight_boxes(_items()[0])[[0, 5]], [[6, 4, 19, 21], [6, 9, 24, 21]])
    assert detection.tight_boxes(np.zeros((1, 5, 5))).tolist() == [[0, 0, 5, 5]]    # empty: the frame


def test_canvases_are_deterministic_and_boxes_hold_the_painted_pixels(drawn):
    x, boxes, classes = drawn
    assert x.shape == (12, 64, 64, 1) and boxes.shape == (12, 3, 4) and classes.shape == (12, 3)
    again = detection.canvases(KEY, *_items(), 12)
    for a, b in zip(drawn, again, strict=True):
        np.testing.assert_array_equal(a, b)
    counts = np.sum(np.asarray(classes) >= 0, 1)
    assert counts.min() >= 1 and counts.max() == 3 and np.all(np.asarray(classes)[:, 0] >= 0)
    rows, cols = np.mgrid[0:64, 0:64] + 0.5
    for image, image_boxes, image_classes in zip(np.asarray(x), np.asarray(boxes), np.asarray(classes)):
        inside = np.zeros((64, 64), bool)
        for (x1, y1, x2, y2), k in zip(image_boxes, image_classes):
            if k < 0:
                assert (x1, y1, x2, y2) == (0, 0, 0, 0)
                continue
            box = (cols > x1 - 1) & (cols < x2 + 1) & (rows > y1 - 1) & (rows < y2 + 1)   # bilinear edges
            assert image[..., 0][(cols > x1 + 1) & (cols < x2 - 1) & (rows > y1 + 1) & (rows < y2 - 1)].min() > 0.99
            inside |= box
        assert np.all(image[..., 0][~inside] == 0)


@jax.jit
def _encode_and_decode(boxes, classes, pred):
    return detection.encode(boxes, classes), detection.decode(pred)


def test_encode_and_decode_by_hand():
    """encode: each box in the cell of its center; decode: the head's numbers of one cell by hand."""
    boxes = jnp.array([[[5.0, 6, 30, 28], [40, 35, 60, 62], [0, 0, 0, 0]]])    # centers (17.5, 17), (50, 48.5)
    pred = jnp.zeros((1, 8, 8, 15)).at[0, 1, 2, 3].set(jnp.log(2.0)).at[0, 1, 2, 9].set(3.0)
    target, (boxes, scores, classes) = _encode_and_decode(boxes, jnp.array([[3, 7, -1]]), pred)
    target = np.asarray(target)
    assert target.shape == (1, 8, 8, 6) and target[..., 0].sum() == 2
    np.testing.assert_array_equal(target[0, 2, 2], [1, 3, 5, 6, 30, 28])      # row 17 // 8, column 17.5 // 8
    np.testing.assert_array_equal(target[0, 6, 6], [1, 7, 40, 35, 60, 62])
    # cell (row 1, column 2): center ((2 + 0.5) 8, (1 + 0.5) 8) = (20, 12), width 2 * 24, height 24
    np.testing.assert_allclose(boxes[0, 1 * 8 + 2], [-4, 0, 44, 24], rtol=1e-6)
    np.testing.assert_allclose(scores[0, 10], 0.5 * np.exp(3) / (np.exp(3) + 9), rtol=1e-6)
    assert int(classes[0, 10]) == 4 and int(classes[0, 0]) == 0


def _float64(tree):
    return jax.tree.map(lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


SMALL = detection.detection_loss.partial(box_weight=3.0, size=16, prior=6.0)   # a 4x4 grid on 16x16 images


def test_detection_loss_gradient_matches_autodiff_and_finite_differences():
    target = np.zeros((2, 4, 4, 6))                       # [present, class, x1, y1, x2, y2], as encode gives
    target[0, 1, 1], target[0, 2, 3], target[1, 3, 1] = [1, 2, 1, 2, 9, 8], [1, 0, 9, 8, 15, 15], [1, 1, 3, 9, 10, 16]
    pred = 0.5 * np.random.default_rng(0).normal(size=(2, 4, 4, 8))
    steps = np.zeros((6, *pred.shape))
    for i, index in enumerate([(0, 0, 0, 1), (0, 1, 1, 3), (0, 2, 3, 4), (1, 3, 1, 2), (1, 3, 1, 6), (1, 0, 2, 0)]):
        steps[(i, *index)] = 1e-6

    @jax.jit
    def gradients(pred, target, steps):
        central = jax.vmap(lambda h: (SMALL(pred + h, target) - SMALL(pred - h, target)) / 2e-6)(steps)
        return SMALL.grad(pred, target), jax.grad(SMALL)(pred, target), central

    hand, auto, central = gradients(pred, target, steps)
    assert relative_error(hand, auto) < 1e-9
    np.testing.assert_allclose(np.sum(hand * steps, axis=(1, 2, 3, 4)) / 1e-6, central, rtol=1e-6, atol=1e-9)


def test_detector_shapes_and_bad_geometry():
    shapes = []
    jax.eval_shape(lambda key: shapes.append(fnn.models.detector(width=2).init(key, (64, 64, 1))[0]) or 0, KEY)
    assert shapes == [(8, 8, 15)]
    with pytest.raises(ValueError, match="detector: image_size / grid must be a power of 2"):
        fnn.models.detector(image_size=64, grid=6)


@pytest.fixture(scope="module")
def torchvision_ops():
    from tests._torchvision import import_torchvision
    return import_torchvision().ops


def _random_boxes(seed, n, scale=20.0):
    rng = np.random.default_rng(seed)
    corner = rng.uniform(0, scale, (n, 2))
    return np.concatenate([corner, corner + rng.uniform(2, scale / 2, (n, 2))], 1)


def test_box_iou_and_the_box_losses_equal_torchvision(torchvision_ops):
    import torch
    first, second = _random_boxes(0, 12), _random_boxes(1, 12)
    pairwise = torchvision_ops.box_iou(torch.tensor(first), torch.tensor(second)).numpy()
    np.testing.assert_allclose(detection.box_iou(first, second), pairwise, rtol=1e-12, atol=1e-15)
    assert 0 < np.sum(pairwise == 0) < pairwise.size                     # disjoint and overlapping pairs
    values = jax.jit(lambda p, t: (iou(p, t, reduction="none"), giou(p, t, reduction="none")))(first, second)
    np.testing.assert_allclose(values[0], 1 - np.diag(pairwise), rtol=1e-6)   # eps = 1e-7 in the ratio
    expected = torchvision_ops.generalized_box_iou_loss(torch.tensor(first), torch.tensor(second)).numpy()
    np.testing.assert_allclose(values[1], expected, rtol=1e-12, atol=1e-15)


def test_giou_gradient_vanishes_on_a_perfect_box_and_the_losses_check_their_input():
    box = jnp.array([[1.0, 2.0, 5.0, 4.0]])
    value, grad = jax.jit(lambda b: (giou(b, b), giou.grad(b, b)))(box)
    np.testing.assert_allclose(grad, 0.0, atol=1e-12)                     # the tie rule: both sides to pred
    assert float(value) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match=r"iou: expected boxes of shape \(\.\.\., 4\).*\(3, 5\)"):
        iou(jnp.zeros((3, 5)), jnp.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"giou.grad: pred and target must have the same shape"):
        giou.grad(jnp.zeros((3, 4)), jnp.zeros((2, 4)))


def _reference_nms(boxes, scores, threshold):
    """By definition: a box survives if no surviving box of higher score overlaps it by more than threshold."""
    survivors = []
    for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
        if all(detection.box_iou(boxes[i], boxes[j])[0, 0] <= threshold for j in survivors):
            survivors.append(i)
    return survivors


def test_nms_by_hand_and_against_a_brute_force_reference():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.0]])
    scores = np.array([0.9, 0.8, 0.7, 0.6])                  # IoU(0, 1) = 81 / 119 = 0.68
    assert detection.nms(boxes, scores, 0.5).tolist() == [0, 2]
    assert detection.nms(boxes, scores, 0.7).tolist() == [0, 1, 2]
    assert detection.nms(boxes, scores, 1.0).tolist() == [0, 1, 2, 3]       # IoU = threshold is kept
    assert detection.batched_nms(boxes, scores, [0, 1, 0, 1], 0.5).tolist() == [0, 1, 2]   # 3 under 1
    assert detection.nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    rng = np.random.default_rng(0)
    for trial in range(5):
        boxes = _random_boxes(trial, 40, scale=30.0)
        scores, classes = rng.permutation(40) / 40, rng.integers(0, 3, 40)
        for threshold in (0.3, 0.5):
            assert detection.nms(boxes, scores, threshold).tolist() == _reference_nms(boxes, scores, threshold)
            per_class = [i for k in range(3) for i in np.flatnonzero(classes == k)[
                _reference_nms(boxes[classes == k], scores[classes == k], threshold)]]
            assert detection.batched_nms(boxes, scores, classes, threshold).tolist() == sorted(
                per_class, key=lambda i: -scores[i])


def _reference_map(detections, truths, threshold=0.5):
    """Per class: rank all detections, match each (greedily, VOC) to its best truth, and average
    over the truths the envelope precision max_{j >= k} precision_j at each true positive's rank k."""
    classes = sorted({int(k) for _, ks in truths for k in ks if k >= 0})
    aps = []
    for k in classes:
        ranked = sorted([(s, i, b) for i, (bs, ss, ks) in enumerate(detections) for b, s, c in zip(bs, ss, ks)
                         if c == k], key=lambda r: -r[0])
        gts = {i: [b for b, c in zip(bs, ks) if c == k] for i, (bs, ks) in enumerate(truths)}
        used, hits = set(), []
        for _, i, box in ranked:
            ious = [detection.box_iou(box, g)[0, 0] for g in gts[i]]
            best = int(np.argmax(ious)) if ious else None
            hits.append(best is not None and ious[best] >= threshold and (i, best) not in used)
            if hits[-1]:
                used.add((i, best))
        total = sum(len(g) for g in gts.values())
        precision = [sum(hits[:r + 1]) / (r + 1) for r in range(len(hits))]
        aps.append(sum(max(precision[r:]) for r in range(len(hits)) if hits[r]) / total)
    return float(np.mean(aps))


def test_mean_average_precision_against_a_brute_force_reference():
    rng = np.random.default_rng(1)
    truths, detections = [], []
    for i in range(8):
        true_boxes = _random_boxes(10 + i, 3, scale=40.0)
        true_classes = rng.integers(-1, 4, 3)                                 # -1: an empty slot
        noisy = np.concatenate([true_boxes + rng.normal(0, 2, (3, 4)), true_boxes[:1] + 1,      # a duplicate
                                _random_boxes(50 + i, 3, scale=40.0)])      # strays
        truths.append((true_boxes, true_classes))
        detections.append((noisy, rng.random(7), np.concatenate([np.abs(true_classes), true_classes[:1] % 4,
                                                                 rng.integers(0, 5, 3)])))
    value, per_class = detection.mean_average_precision(detections, truths)
    assert 0.1 < value < 0.95 and set(per_class) <= {0, 1, 2, 3}
    assert value == pytest.approx(_reference_map(detections, truths), abs=1e-12)


def test_average_precision_edge_cases_by_hand():
    boxes, classes = np.array([[0, 0, 10, 10], [20, 20, 30, 30.0]]), np.array([1, 1])
    truths = [(boxes, classes)]
    assert detection.mean_average_precision([(boxes, np.array([0.9, 0.8]), classes)], truths)[0] == 1.0
    assert detection.mean_average_precision([(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))], truths)[0] == 0.0
    # ranked TP, FP (a duplicate of the first), TP over 2 truths: precision 1, 1/2, 2/3 -> AP = (1 + 2/3) / 2
    dup = ([boxes[0], boxes[0] + 0.5, boxes[1]], np.array([0.9, 0.8, 0.7]), np.array([1, 1, 1]))
    assert detection.mean_average_precision([dup], truths)[0] == pytest.approx(5 / 6)
    # a class without ground truth is not scored; its detections do not count
    stray = ([*dup[0], boxes[0]], np.array([0.9, 0.8, 0.7, 0.95]), np.array([1, 1, 1, 4]))
    value, per_class = detection.mean_average_precision([stray], truths)
    assert value == pytest.approx(5 / 6) and list(per_class) == [1]
    assert np.isnan(detection.mean_average_precision([stray], [(np.zeros((0, 4)), np.zeros(0, int))])[0])
    assert detection.average_precision([], [], 3) == 0.0
