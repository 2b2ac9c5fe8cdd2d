"""Sub-commands of ``yolo-attn``; one module per command (see :mod:`yolo_attn.cli`)."""
