"""One training engine for every learned method.

A method describes its data and model; :func:`train` does everything else:
run folder with lock, validated configuration (:class:`TrainingConfig`,
pydantic), checkpoints with bit-exact resume, Ctrl-C/SIGTERM safety,
non-finite-loss rollback, a robust holdout stopping rule with best-state
keeping, learning-rate warm-up and decay, gradient clipping, weight
averaging, progress, ``metrics.csv``, ``model.pt``, ``summary.json`` and
``torchrun`` data parallelism. A method is any object with the attributes
and methods of :class:`Method`, e.g. fitting an image with a small network::

    class FitImage:
        name, n_holdout = "fit-image", 8
        def __init__(self, image, config):  # config: a TrainingConfig subclass
            self.image, self.config, self.n_train = image, config, image.numel() - 8
        def build_model(self):
            torch.manual_seed(self.config.seed); return torch.nn.Linear(2, 1)
        def batch_loss(self, net, indices, step):
            return ((net(coords[indices]) - self.image.flatten()[indices]) ** 2).mean()
        def holdout_losses(self, model, indices): ...  # per held-out pixel
        def describe(self): return {"config": self.config.to_dict(), "data": {"fingerprint": fingerprint(image)}}
        def collapsed(self, model): return None
        def save(self, path, model, extra): torch.save(model.state_dict(), path)

    result = train(FitImage(image, config), run_dir="run")

The modules: :mod:`.config` (options), :mod:`.runfile` (YAML/TOML/JSON run
files), :mod:`.rundir` (folder, lock, clean-up), :mod:`.checkpoint`,
:mod:`.state` (optimiser, schedule, sampling), :mod:`.stopping`,
:mod:`.signals`, :mod:`.distributed`, :mod:`.engine` (the loop).
"""

from tomotime.training.checkpoint import CHECKPOINT_NAME, NoSpaceError, fingerprint, read_checkpoint
from tomotime.training.config import SCHEMA_VERSION, TrainingConfig
from tomotime.training.distributed import LOCAL, DistributedContext, init_distributed, is_main_process
from tomotime.training.engine import (
    MAX_NAN_EVENTS,
    RESUMABLE,
    Method,
    TrainingCollapsed,
    TrainResult,
    train,
    train_on,
)
from tomotime.training.rundir import RUN_FILES, RunLockedError, remove_partials, run_lock
from tomotime.training.runfile import read_run_file, resolve_config
from tomotime.training.signals import TrainingInterrupted

__all__ = [
    "TrainingConfig", "SCHEMA_VERSION", "Method", "TrainResult", "train", "train_on", "TrainingCollapsed",
    "TrainingInterrupted",
    "NoSpaceError", "RunLockedError", "RESUMABLE", "MAX_NAN_EVENTS", "RUN_FILES", "CHECKPOINT_NAME",
    "read_run_file", "resolve_config", "read_checkpoint", "fingerprint", "run_lock", "remove_partials",
    "DistributedContext", "LOCAL", "init_distributed", "is_main_process",
]
