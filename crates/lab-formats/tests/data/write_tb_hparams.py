"""Writes crates/lab-formats/tests/data/tb-hparams with tensorboardX 2.6.5:
a run with a curve, add_scalars' sub-runs (`loss/train`, `loss/val`), a
sub-run laid out as PyTorch's add_scalars lays it (`loss_test`: scalars
only), and the add_hparams trial sub-directory (`<time.time()>/`)."""
import os
import sys
from tensorboardX import SummaryWriter

w = SummaryWriter(logdir=sys.argv[1])
flat = SummaryWriter(logdir=os.path.join(sys.argv[1], "loss_test"))
for step in range(3):
    w.add_scalar("train/loss", 1.0 / (step + 1), step)
    w.add_scalars("loss", {"train": 1.0 / (step + 1), "val": 2.0 / (step + 1)}, step)
    flat.add_scalar("loss", 3.0 / (step + 1), step)
flat.close()
w.add_hparams(
    {"lr": 0.001, "batch": 64, "opt": "adam", "warmup": True, "eps": 1e-05},
    {"hparam/score": 0.9},
)
w.close()
