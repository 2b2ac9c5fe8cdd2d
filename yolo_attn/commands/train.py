"""``yolo-attn train key=value ...``: train an attention model with Ultralytics' training arguments."""

from __future__ import annotations

import argparse

HELP = "train a model YAML with attention layers (Ultralytics key=value arguments: model= data= epochs= imgsz= ...)"

EPILOG = """\
Arguments are Ultralytics' training arguments as key=value pairs, typed like Ultralytics' CLI does
(epochs=10 -> int, lr0=0.01 -> float, plots=False -> bool). data= defaults to the shipped shapes dataset.
--short-run adds settings for a few epochs on a CPU (SGD lr0=0.02, no warm-up, batch 8, no mosaic);
explicit arguments override them. A model=*.pt is read without running code from the file
(rebuilt from the model YAML it carries), and a dataset YAML's download: entry is never run, unless --trust
(or trust=True) is given. The dataset is checked first (as yolo-attn check-data does). Example:

  yolo-attn train model=yolov5n-se-backbone-end.yaml data=data/shapes.yaml epochs=20 imgsz=128 --short-run
"""


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("args", nargs="*", metavar="key=value", help="Ultralytics training arguments")
    parser.add_argument("--short-run", action="store_true", help="apply yolo_attn.train.SHORT_RUN before the arguments")
    parser.add_argument("--trust", action="store_true",
                        help="unpickle a model=*.pt fully (runs code in the file; only for files you made) and "
                        "let Ultralytics run the dataset YAML's download: (a URL, shell command or Python code) "
                        "when a split is missing. Default: run nothing from either file")


def run(args) -> int:
    from ..train import SHORT_RUN, parse_args, train

    overrides = parse_args(args.args)
    if args.short_run:
        overrides = {**SHORT_RUN, **overrides}
    if args.trust:
        overrides["trust"] = True
    result = train(**overrides)
    print(f"\n{result.save_dir}: {result.task} {result.summary()}  ({result.seconds:.0f}s); best weights {result.best}")
    return 0
