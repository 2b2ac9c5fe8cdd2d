#!/usr/bin/env bash
# A segmentation comparison on real photographs: COCO128-seg (../shared/datasets/coco128-seg, 100 COCO images with
# their instance polygons) split 70 train / 30 held out, fine-tuned from a segmentation checkpoint whose backbone and
# neck are the COCO-trained YOLOv5n (../shared/weights/yolov5n.pt) and whose Segment head was trained here.
# Results: benchmarks/results/coco128_seg.md. About 55 minutes on 2 CPU cores.
#
#   bash benchmarks/coco128_seg.sh [OUT]      (default OUT: runs/coco128-seg; needs ../shared)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED:-$REPO/../shared}"
OUT="$(mkdir -p "${1:-runs/coco128-seg}" && cd "${1:-runs/coco128-seg}" && pwd)"
cd "$OUT"

# 1. The split (a fixed shuffle) and its dataset YAML, the class names as the shared YAML lists them
python - "$SHARED/datasets/coco128-seg" <<'EOF'
import pathlib, random, sys
root = pathlib.Path(sys.argv[1])
files = sorted((root / "images/train2017").glob("*.jpg"))
order = list(range(len(files)))
random.Random(0).shuffle(order)
val = sorted(str(files[i]) for i in order[:30])
train = sorted(str(files[i]) for i in order[30:])
pathlib.Path("train.txt").write_text("\n".join(train) + "\n")
pathlib.Path("val.txt").write_text("\n".join(val) + "\n")
text = (root / "coco128-seg.yaml").read_text()
pathlib.Path("coco128-seg-split.yaml").write_text(
    f"path: {pathlib.Path.cwd()}\ntrain: train.txt\nval: val.txt\n" + text[text.index("names:"):])
EOF
yolo-attn check-data coco128-seg-split.yaml --task segment

# 2. YOLOv5n with a Segment head (Ultralytics' yolov5.yaml, its last row made a Segment head) and two attention
#    variants of it
python - <<'EOF'
import pathlib, re, ultralytics
src = pathlib.Path(ultralytics.__file__).parent / "cfg/models/v5/yolov5.yaml"
text, n = re.subn(r"Detect, \[nc\]\]", "Segment, [nc, 32, 256]]", src.read_text())
assert n == 1, "yolov5.yaml's Detect row not found"
pathlib.Path("yolov5n-seg.yaml").write_text(text)
EOF
yolo-attn make-yaml --base yolov5n-seg.yaml --layer SE -p backbone-end -o yolov5n-seg-se-backbone-end.yaml --force
yolo-attn make-yaml --base yolov5n-seg.yaml --layer CBAM -p neck -o yolov5n-seg-cbam-neck.yaml --force

# 3. The stock segmentation checkpoint: the COCO backbone and neck transferred, the head trained 60 epochs
yolo-attn transfer "$SHARED/weights/yolov5n.pt" yolov5n-seg.yaml -o yolov5n-seg-cocobackbone.pt --force
yolo-attn train model=yolov5n-seg-cocobackbone.pt data=coco128-seg-split.yaml epochs=60 imgsz=320 batch=16 \
  workers=0 optimizer=AdamW lr0=0.002 project="$OUT/stock" name=s60 exist_ok=True plots=False

# 4. The comparison: 3 models x 3 seeds, 10 epochs of fine-tuning with the identity start, rule declared first
yolo-attn compare --data coco128-seg-split.yaml \
  --models yolov5n-seg.yaml yolov5n-seg-se-backbone-end.yaml yolov5n-seg-cbam-neck.yaml \
  --pretrained stock/s60/weights/last.pt --seeds 3 --epochs 10 --imgsz 320 --workers 2 --threads 1 \
  --margin 0.005 --out sweep
