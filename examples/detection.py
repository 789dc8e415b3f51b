"""Single-shot object detection: find and name the Fashion-MNIST items pasted on 64x64 canvases.

Each canvas holds 1 to 3 items at random places and scales (`fnn.detection.canvases`; the
training canvases from the training images, the held-out ones from the test images). A small
CNN (`fnn.models.detector`) maps a canvas to an 8x8 grid of cells, each predicting objectness,
a box and 10 class logits; it trains on `fnn.detection.detection_loss` (objectness BCE + class
cross-entropy + GIoU box loss) with grads="manual": every gradient, the GIoU's through the box
corners and the decoding included, is derived by hand. After each epoch: mAP@0.5 (VOC all-point)
on the held-out canvases, after per-class non-max suppression. Writes detections.png (predicted
boxes and labels on a few held-out canvases) to --out.

    python examples/detection.py [--limit 10000] [--epochs 10] [--test 1000] [--out DIR]
"""
import time

import _common
import jax
import numpy as np

import fnn
from fnn import detection

BATCH = 64
CLASSES = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def draw(path, x, detections, truths, count: int = 8) -> None:
    """The first `count` canvases with their predicted boxes (red, label and score) and the true ones (green)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    fig, axes = plt.subplots(2, count // 2, figsize=(2.2 * count // 2, 4.6))
    for ax, image, (boxes, scores, classes), (true_boxes, _) in zip(axes.flat, x, detections, truths):
        ax.imshow(image[..., 0], cmap="gray", extent=(0, 64, 64, 0))
        for (x1, y1, x2, y2) in true_boxes:
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="lime", lw=1, ls="--"))
        for (x1, y1, x2, y2), score, k in zip(boxes, scores, classes):
            if score > 0.3:
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="red", lw=1.2))
                ax.text(x1, y1 - 1, f"{CLASSES[k]} {score:.2f}", color="red", fontsize=6)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    parser = _common.parser(__doc__, out="runs/detection", limit=10000, limit_help="training canvases",
                            epochs=10, small="python examples/detection.py --limit 2000 --epochs 2 --test 300")
    parser.add_argument("--test", type=int, default=1000, help="held-out canvases (default: 1000)")
    parser.add_argument("--width", type=int, default=16, help="the first convolution's channels (default: 16)")
    args = parser.parse_args()
    _common.check_budget(limit=args.limit, batch_size=BATCH, epochs=args.epochs)
    (x_items, y_items), (x_test_items, y_test_items) = _common.load_fashion_mnist(None)
    key = jax.random.PRNGKey(args.seed)
    x, boxes, classes = detection.canvases(jax.random.fold_in(key, 1), x_items, y_items, args.limit)
    x_test, test_boxes, test_classes = detection.canvases(jax.random.fold_in(key, 2), x_test_items,
                                                          y_test_items, args.test)
    truths = detection.truths(test_boxes, test_classes)
    model = fnn.models.detector(width=args.width)
    params, state = jax.jit(lambda k: model.init(k, (64, 64, 1))[1:])(jax.random.fold_in(key, 3))  # one program
    scores = []

    def on_epoch(epoch, params, state, opt_state, history):
        found = detection.detect(fnn.train.predict(model, params, state, x_test, batch_size=500))
        scores.append(detection.mean_average_precision(found, truths, iou_threshold=0.5)[0])
        print(f"epoch {epoch + 1}: loss {history['train_loss'][-1]:.3f}, held-out mAP@0.5 {scores[-1]:.4f}", flush=True)

    start, steps = time.perf_counter(), args.epochs * (args.limit // BATCH)
    params, state, _, _ = fnn.train.fit(
        model, params, state, fnn.optim.adam(fnn.optim.cosine_decay(2e-3, steps, alpha=0.05)),
        (x, detection.encode(boxes, classes)),
        loss=detection.detection_loss, epochs=args.epochs, batch_size=BATCH, key=jax.random.fold_in(key, 4),
        grads="manual", progress=False, on_epoch=on_epoch)
    found = detection.detect(fnn.train.predict(model, params, state, x_test, batch_size=500))
    _, per_class = detection.mean_average_precision(found, truths, iou_threshold=0.5)
    print("AP@0.5 per class: " + ", ".join(f"{CLASSES[k]} {ap:.3f}" for k, ap in per_class.items()))
    print(f"{args.limit} training canvases, {args.epochs} epochs, {time.perf_counter() - start:.0f} s")
    draw(_common.out_dir(args) / "detections.png", np.asarray(x_test), found, truths)
    _common.result(map50=scores[-1], epochs=args.epochs)


if __name__ == "__main__":
    _common.run(main)
