"""Loads wgrad checkpoints into PyTorch and checks them against wgrad's own outputs.

For the preset and every config in examples/configs/, this script has `wgrad` train a model for
a few steps and save it, builds the matching `nn.Module` from the config (one PyTorch class per
layer type, PyTorch's own arguments), loads the checkpoint with a strict `load_state_dict`, and
compares, in evaluation mode:
  - the codes `wgrad encode` wrote for a folder of PNGs with the PyTorch encoder's (the means,
    for a variational autoencoder), and
  - the reconstructions in `wgrad reconstruct`'s grid with the PyTorch model's (8-bit PNG: within
    one grey level);
and one training step in training mode: wgrad's first SGD step on the PNGs (one batch of its
whole training split, in file order) against PyTorch's `model.train()` step from the same initial
weights — the loss, and every parameter and buffer after the step (batch normalisation's batch
moments, running moments and batch count included). The random draws of a denoising or
variational autoencoder are wgrad's counter-based ones (`normal` below, as shaders/noise.wgsl
computes them), so PyTorch gets the same noise.

Needs torch, safetensors, numpy and pillow:

    pip install torch safetensors numpy pillow
    python examples/pytorch/check_checkpoints.py target/release/wgrad /tmp/wgrad-pytorch

It prints one line per model and exits non-zero if any check fails.
"""

import json
import pathlib
import subprocess
import sys
import tomllib

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parents[2]
GAP, SCALE = 2, 4  # wgrad's grid: border pixels, and the upscale `reconstruct` uses


def size(v):
    return tuple(v) if isinstance(v, list) else v


def layer(spec):
    """The PyTorch module for one layer of a wgrad config."""
    kind = spec["type"]
    a = {k: size(v) for k, v in spec.items() if k != "type"}
    if kind == "Unflatten":
        return nn.Unflatten(1, tuple(a["dims"]))
    return getattr(nn, kind)(**a)


class Autoencoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.encoder = nn.Sequential(*[layer(s) for s in config["encoder"]])
        self.decoder = nn.Sequential(*[layer(s) for s in config["decoder"]])

    def code(self, x):
        h = self.encoder(x)
        if "variational" in self.config:
            return h.chunk(2, dim=1)[0]  # the means
        return h

    def forward(self, x):
        y = self.decoder(self.code(x))
        return torch.sigmoid(y) if self.config.get("loss") == "bce_with_logits" else y


def run(*args):
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


def shapes_folder(path, n=24, side=28):
    """`n` greyscale PNGs of filled squares and discs at random places."""
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side]
    for i in range(n):
        cy, cx, r = rng.integers(8, 20), rng.integers(8, 20), rng.integers(4, 8)
        mask = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r) if i % 2 else (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        img = np.where(mask, 230, 20).astype(np.uint8)
        Image.fromarray(img, "L").save(path / f"{i:03}.png")
    return sorted(path.glob("*.png"))


def nearest(rows, table):
    """For each row, the smallest max-abs distance to any row of `table`."""
    return [float(np.abs(table - r).max(axis=1).min()) for r in rows]


def check(wgrad, config_path, out, pngs, images):
    stem = config_path.stem if config_path else "preset"
    ckpt = out / f"{stem}.safetensors"
    cfg_args = ["--config", config_path] if config_path else []
    run(wgrad, "train", *cfg_args, "--steps", 20, "--batch", 8, "--backend", "cpu", "--save", ckpt)
    with safe_open(ckpt, "pt") as f:
        config = tomllib.loads(f.metadata()["wgrad.config"])
    model = Autoencoder(config)
    model.load_state_dict(load_file(ckpt), strict=True)
    model.eval()
    with torch.no_grad():
        codes = model.code(images).flatten(1).numpy()
        recon = model(images).numpy()
    # Codes: wgrad's split of the folder is its own, so each row is matched to its nearest.
    codes_file = out / f"{stem}.codes.safetensors"
    run(wgrad, "encode", "--ckpt", ckpt, "--data", pngs[0].parent, "--out", codes_file, "--backend", "cpu")
    got = load_file(codes_file)
    rows = np.concatenate([got[k].flatten(1).numpy() for k in ("train.codes", "test.codes") if k in got])
    scale = max(1.0, float(np.abs(codes).max()))
    code_err = max(nearest(rows, codes)) / scale
    # Reconstructions: the grid's top row are inputs (found by their pixels), below them wgrad's
    # reconstructions, 8-bit, upscaled by pixel repetition.
    grid_file = out / f"{stem}.grid.png"
    run(wgrad, "reconstruct", "--ckpt", ckpt, "--data", pngs[0].parent, "--out", grid_file, "--count", 4, "--backend", "cpu")
    grid = np.asarray(Image.open(grid_file).convert("L"), dtype=np.float64) / 255
    side = images.shape[-1]
    cell = side * SCALE + GAP
    flat_inputs = images.flatten(1).numpy()
    rec_err = 0.0
    columns = (grid.shape[1] - GAP) // cell
    for c in range(columns):
        x0 = GAP + c * cell
        top = grid[GAP : GAP + side * SCALE : SCALE, x0 : x0 + side * SCALE : SCALE]
        bottom = grid[GAP + cell : GAP + cell + side * SCALE : SCALE, x0 : x0 + side * SCALE : SCALE]
        which = int(np.abs(flat_inputs - top.reshape(1, -1)).max(axis=1).argmin())
        want = np.clip(recon[which, 0], 0, 1)
        rec_err = max(rec_err, float(np.abs(np.round(want * 255) / 255 - bottom).max()))
    ok = code_err < 1e-4 and rec_err <= 1 / 255 + 1e-6
    params = sum(t.numel() for t in model.state_dict().values())
    loss_err, param_err = training_step(wgrad, config_path, out, pngs, images)
    ok = ok and loss_err < 1e-5 and param_err < 1e-3
    step = f"; a training step: loss {loss_err:.1e}, changes of parameters and buffers {param_err:.1e}"
    print(
        f"{stem:12} strict load ok ({len(model.state_dict())} tensors, {params} values); "
        f"codes: worst |wgrad − torch| {code_err:.1e} of the largest; "
        f"reconstructions: worst {rec_err * 255:.2f} grey levels over {columns} images{step} — "
        + ("PASS" if ok else "FAIL")
    )
    return ok


LR = 10.0

LOSSES = {
    "mse": nn.MSELoss(),
    "l1": nn.L1Loss(),
    "bce": nn.BCELoss(),
    "bce_with_logits": nn.BCEWithLogitsLoss(),
}


def pcg(v):
    v = (v * np.uint32(747796405) + np.uint32(2891336453)).astype(np.uint32)
    word = (((v >> ((v >> np.uint32(28)) + np.uint32(4))) ^ v) * np.uint32(277803737)).astype(np.uint32)
    return (word >> np.uint32(22)) ^ word


def normal(seed, step, n):
    """wgrad's standard normal draws of elements 0..n at `step` (shaders/noise.wgsl)."""
    with np.errstate(over="ignore"):
        i = np.arange(n, dtype=np.uint32)
        h1 = pcg(pcg(pcg(np.uint32(seed)) ^ np.uint32(step)) ^ i)
        h2 = pcg(h1)
    u1 = ((h1 >> np.uint32(8)) + 1).astype(np.float64) / 16777216.0
    u2 = (h2 >> np.uint32(8)).astype(np.float64) / 16777216.0
    return torch.tensor(np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2), dtype=torch.float32)


def training_step(wgrad, config_path, out, pngs, images):
    """wgrad's first SGD step (lr `LR`) on the PNG folder against PyTorch's, from the same
    initial weights. Returns (loss error, worst parameter error relative to its largest value)."""
    stem = config_path.stem if config_path else "preset"
    cfg_args = ["--config", config_path] if config_path else []
    init, one = out / f"{stem}.init.safetensors", out / f"{stem}.one.safetensors"
    common = ["--data", pngs[0].parent, "--backend", "cpu", "--no-shuffle"]
    run(wgrad, "train", *cfg_args, *common, "--steps", 0, "--save", init)
    # A large learning rate, so that the step's changes stand far above the parameters' f32
    # rounding (one step: that it would not train well does not matter).
    run(wgrad, "train", *cfg_args, *common, "--steps", 1, "--batch", 64, "--optimizer", "sgd", "--lr", LR, "--save", one)
    with safe_open(init, "pt") as f:
        config = tomllib.loads(f.metadata()["wgrad.config"])
    model = Autoencoder(config)
    model.load_state_dict(load_file(init), strict=True)
    # Which images wgrad trained on: its training split, found by their codes.
    codes_file = out / f"{stem}.init.codes.safetensors"
    run(wgrad, "encode", "--ckpt", init, "--data", pngs[0].parent, "--out", codes_file, "--backend", "cpu")
    model.eval()
    with torch.no_grad():
        all_codes = model.code(images).flatten(1).numpy()
    train_codes = load_file(codes_file)["train.codes"].flatten(1).numpy()
    rows = [int(np.abs(all_codes - r).max(axis=1).argmin()) for r in train_codes]
    x = images[rows]
    model.train()
    criterion = LOSSES[config.get("loss", "mse")]
    inputs = x
    if "noise" in config:  # step 0's noise
        n = config["noise"]
        inputs = torch.clamp(x + n["std"] * normal(n.get("seed", 0), 0, x.numel()).reshape(x.shape), 0, 1)
    h = model.encoder(inputs)
    if "variational" in config:
        v = config["variational"]
        mu, logvar = h.chunk(2, dim=1)
        eps = normal(v.get("seed", 0), 0, mu.numel()).reshape(mu.shape)
        y = model.decoder(mu + torch.exp(0.5 * logvar) * eps)
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        criterion.reduction = "sum"
        loss = (criterion(y, x) + v.get("beta", 1.0) * kld) / x.numel()
    else:
        loss = criterion(model.decoder(h), x)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= LR * p.grad
    want_loss = float(loss.detach())
    csv = (out / f"{stem}.one.loss.csv").read_text().splitlines()
    got_loss = float(csv[1].split(",")[2])
    # What the step changed (−lr·gradient for a parameter; the moved moments and the count for
    # a buffer), wgrad's against PyTorch's, each tensor relative to its largest change (at least
    # a thousandth of the largest change of any tensor: a bias right before a batch norm has a
    # zero gradient, which both sides give as rounding noise).
    before, got = load_file(init), load_file(one)
    want = {n: (t.double() - before[n].double()) for n, t in model.state_dict().items()}
    changed = {n: got[n].double() - before[n].double() for n in want}
    largest = max(float(d.abs().max()) for d in want.values())
    worst = 0.0
    for n, d in want.items():
        scale = max(float(d.abs().max()), 1e-3 * largest)
        worst = max(worst, float((changed[n] - d).abs().max()) / scale)
    return abs(got_loss - want_loss) / abs(want_loss), worst


def main():
    wgrad, out = pathlib.Path(sys.argv[1]).resolve(), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    pngs = shapes_folder(out / "pngs")
    images = torch.tensor(np.stack([np.asarray(Image.open(p), dtype=np.float32) / 255 for p in pngs]))[:, None]
    configs = [None] + sorted((ROOT / "examples" / "configs").glob("*.toml"))
    results = [check(wgrad, c, out, pngs, images) for c in configs]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
