"""fnn's MLP VAE beside PyTorch's reference VAE (pytorch/examples, vae/main.py), same recipe, same data.

Both: 784-400-(20 mu, 20 log_var) encoder, 20-400-784 decoder, ReLU, Bernoulli likelihood (BCE on
sigmoid outputs, summed over pixels), Adam(1e-3), batch 128, reshuffled each epoch, Fashion-MNIST
from fnn.data (pixels in [0, 1], as torchvision's ToTensor). The figure is the reference's test
loss: -ELBO summed over the test set / 10000, one z per image, in nats per image. Differences kept
from the reference: PyTorch sums the loss over the batch where fnn averages (Adam is invariant to
that scale up to eps), and each library initialises its own way (PyTorch's Linear: U(+-1/sqrt(fan_in));
fnn's Dense: Glorot uniform).

    python benchmarks/vae_reference.py [--epochs 10] [--limit N]
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


def torch_reference(x_train, x_test, epochs, seed):
    """pytorch/examples' VAE, its loss_function and its train/test loops, on the given arrays."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    torch.manual_seed(seed)
    torch.set_num_threads(2)

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
            self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

        def forward(self, x):
            h1 = F.relu(self.fc1(x.view(-1, 784)))
            mu, logvar = self.fc21(h1), self.fc22(h1)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar

    def loss_function(recon_x, x, mu, logvar):
        bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
        return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    model = VAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train, test = torch.from_numpy(x_train.reshape(-1, 784)), torch.from_numpy(x_test.reshape(-1, 784))
    curve = []
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(train)).split(128):
            optimizer.zero_grad()
            recon, mu, logvar = model(train[idx])
            loss_function(recon, train[idx], mu, logvar).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            curve.append(sum(float(loss_function(r, b, m, v)) for b in test.split(1000) for r, m, v in [model(b)])
                         / len(test))
        print(f"  PyTorch epoch {epoch + 1}: test -ELBO {curve[-1]:.2f}", flush=True)
    return curve


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None, help="training images (default: all 60000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["fnn", "torch"], default=None, help="run one side only")
    args = parser.parse_args()
    import vae as example  # examples/vae.py: fnn's training loop, said once

    import fnn
    from fnn.models import generative
    x_train, _ = fnn.data.load_dataset("fashion-mnist", "train")
    x_test, _ = fnn.data.load_dataset("fashion-mnist", "test")
    x_train = x_train[:args.limit]
    curves, cpu = {}, {}
    for side in ("fnn", "torch"):
        if args.only in (None, side):
            start = time.process_time()
            curves[side] = (example.train(generative.mlp_vae(), x_train, x_test, args.epochs, args.seed)[2]
                            if side == "fnn" else torch_reference(x_train, x_test, args.epochs, args.seed))
            cpu[side] = time.process_time() - start
    ours, theirs = curves.get("fnn", [float("nan")] * args.epochs), curves.get("torch", [float("nan")] * args.epochs)
    print(f"\ntest -ELBO (nats/image), MLP VAE 784-400-20, Bernoulli, Adam 1e-3, batch 128, {len(x_train)} images")
    print("| epoch | fnn | PyTorch reference |\n| --- | --- | --- |")
    for epoch, (a, b) in enumerate(zip(ours, theirs), 1):
        print(f"| {epoch} | {a:.2f} | {b:.2f} |")
    print("CPU time: " + ", ".join(f"{side} {seconds:.0f} s" for side, seconds in cpu.items()))
    print(f"result: fnn={ours[-1]:.2f} torch={theirs[-1]:.2f} gap={ours[-1] - theirs[-1]:+.2f}")


if __name__ == "__main__":
    main()
