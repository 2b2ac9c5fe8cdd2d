"""Deploying what was compared: export parity across formats, INT8 accuracy per placement (``yolo-attn export-check``).

- :mod:`.formats` — the formats, the packages each needs (the ``deploy`` extra), installed versions;
- :mod:`.models` — the models checked (a user's file, or one small model per registered layer);
- :mod:`.check` — export through Ultralytics' exporter and comparison with PyTorch on real images;
- :mod:`.matrix` — the results file, the per-layer support shown by ``yolo-attn list`` and the Markdown matrix;
- :mod:`.int8` — mAP of OpenVINO INT8 against FP32 for the trained models of a ``compare`` sweep.
"""
