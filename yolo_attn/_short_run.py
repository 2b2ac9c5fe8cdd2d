"""``yolo_attn.train.SHORT_RUN``, in a module that imports nothing (``yolo-attn compare --help`` shows its batch size)."""

# Settings for short training runs on a CPU (a few minutes on the shipped shapes dataset). Ultralytics'
# defaults target 100+ epoch GPU runs: optimizer=auto picks AdamW at lr ~1e-4 with 3 warm-up epochs for
# short runs, which barely moves a from-scratch model in 10 epochs.
SHORT_RUN = {
    "optimizer": "SGD",
    "lr0": 0.02,
    "lrf": 0.1,
    "momentum": 0.9,
    "warmup_epochs": 0,  # Ultralytics warms up for at least 100 iterations: most of a short run
    "batch": 8,
    "nbs": 8,  # one optimizer step per batch (no gradient accumulation): more steps per epoch
    "mosaic": 0.0,
    "close_mosaic": 0,
    "patience": 0,  # no early stopping
}
