"""torchvision for the tests, imported past its missing C extension.

The installed torchvision (0.28.0) is built against CUDA torch; beside the CPU-only torch
its C ops (nms, roi_align, ...) are absent, so `import torchvision` fails where it registers
their fake (meta) kernels with `torch.library.register_fake`. The models the tests build
never call those ops, so the registrations are skipped for the duration of the import.
"""


def import_torchvision():
    """The torchvision module, imported with `torch.library.register_fake` a no-op."""
    import torch.library as tl
    real = tl.register_fake
    tl.register_fake = lambda *a, **k: (lambda f: f)   # the C ops are absent from the CPU build; models do not use them
    try:
        import torchvision
    finally:
        tl.register_fake = real
    return torchvision
