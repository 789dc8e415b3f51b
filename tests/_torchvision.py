"""torchvision for the tests, imported without its C extension.

torchvision 0.28.0's compiled ops (nms, roi_align, ...) do not load beside the CPU build of
torch 2.13.0 ("operator torchvision::nms does not exist"): importing torchvision registers fake
(meta) kernels for them with `torch.library.register_fake`, which fails. The classification
models (resnet, vgg, alexnet, ...) are pure PyTorch and never call those ops, so registering
nothing while torchvision imports is safe for what the tests use.
"""


def import_torchvision():
    """`import torchvision`, with `torch.library.register_fake` a no-op during the import."""
    import torch.library as tl
    real = tl.register_fake
    tl.register_fake = lambda *a, **k: (lambda f: f)   # the C ops are absent from the CPU build; models do not use them
    try:
        import torchvision
    finally:
        tl.register_fake = real
    return torchvision
