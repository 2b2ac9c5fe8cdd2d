"""The plotting library as every figure of yolo_attn uses it: matplotlib's Agg backend (PNG, no display), DejaVu Sans
(shipped with matplotlib: nothing is downloaded), one size. The sweep's, the studies' and the diagnosis' plots all
start here."""

from __future__ import annotations


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend with yolo_attn's font settings (imported on first use: about 0.5 s)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 9, "figure.dpi": 110})
    return plt
