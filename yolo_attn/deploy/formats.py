"""The deployment formats that ``yolo-attn export-check`` exports to through Ultralytics' own exporter.

Each :class:`Format` names the ``YOLO.export`` arguments, the Python packages its conversion and its inference
need, and whether its exported model can run on this platform (CoreML predicts on macOS only). The packages
are the optional ``deploy`` extra: :func:`require` imports them or raises an ImportError that says what to
install, so a format whose tooling is missing is reported as *not checked*, never as passed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field

DEPLOY_HINT = "pip install 'yolo_attn[deploy]'"


@dataclass(frozen=True)
class Format:
    """One deployment format.

    Attributes:
        name: the name used on the command line and in the results (``onnx-dynamic``).
        export: keyword arguments of ``YOLO.export`` (besides ``imgsz``, ``batch``, ``device``).
        packages: ``(import name, pip name)`` of every package the conversion and the inference need.
        runs_here: False where the exported model cannot be run on this platform (conversion only).
        int8: an INT8 (post-training quantised) model: compared, never held to the FP32 tolerance.
        dynamic: exported with dynamic input shapes (also checked at a second, non-square size).
        note: what the format is, for the tables.
        in_extra: its packages are in the ``deploy`` extra; False: they are installed on their own (``hint``).
        hint: for a format outside the extra, why and where to install its packages.
    """

    name: str
    export: dict = field(default_factory=dict)
    packages: tuple[tuple[str, str], ...] = ()
    runs_here: bool = True
    int8: bool = False
    dynamic: bool = False
    note: str = ""
    in_extra: bool = True
    hint: str = ""

    def missing(self) -> list[str]:
        """pip names of the packages of this format that are not installed."""
        return [pip for mod, pip in self.packages if importlib.util.find_spec(mod) is None]

    def install_hint(self, missing: list[str]) -> str:
        """How to install ``missing``: the ``deploy`` extra, or for a format outside it, its own packages."""
        if self.in_extra:
            return f"{DEPLOY_HINT} (or pip install {' '.join(missing)})"
        return f"pip install {' '.join(missing)} (not in the deploy extra: {self.hint})"


_ONNX = (("onnx", "onnx"), ("onnxruntime", "onnxruntime"), ("onnxslim", "onnxslim"))
FORMATS: tuple[Format, ...] = (
    Format("torchscript", {"format": "torchscript"}, note="TorchScript (torch.jit.trace)"),
    Format("onnx", {"format": "onnx", "dynamic": False}, _ONNX, note="ONNX, static shape, ONNX Runtime CPU"),
    Format("onnx-dynamic", {"format": "onnx", "dynamic": True}, _ONNX, dynamic=True,
           note="ONNX, dynamic batch and image size, ONNX Runtime CPU"),
    Format("openvino", {"format": "openvino"}, (("openvino", "openvino"),), note="OpenVINO FP32, CPU plugin"),
    Format("openvino-int8", {"format": "openvino", "int8": True}, (("openvino", "openvino"), ("nncf", "nncf")),
           int8=True, note="OpenVINO INT8, NNCF post-training quantisation on training images"),
    Format("ncnn", {"format": "ncnn"}, (("ncnn", "ncnn"), ("pnnx", "pnnx")), note="NCNN through PNNX, NCNN CPU"),
    Format("litert", {"format": "litert"}, (("litert_torch", "litert-torch"), ("ai_edge_litert", "ai-edge-litert")),
           note="LiteRT (TFLite) FP32 through litert-torch", in_extra=False,
           hint="they pin older typing_extensions and pydantic than yolo_attn's other extras; install them in an "
                "environment of their own, or with pip install --target DIR and PYTHONPATH=DIR"),
    Format("coreml", {"format": "coreml"}, (("coremltools", "coremltools"),), runs_here=sys.platform == "darwin",
           note="CoreML mlpackage (coremltools); predicts on macOS only"),
)
FORMAT_NAMES = tuple(f.name for f in FORMATS)
# The formats of the cheap check (CI): conversion and inference in seconds per layer.
QUICK_FORMATS = ("torchscript", "onnx-dynamic", "openvino")


def get_format(name: str) -> Format:
    for f in FORMATS:
        if f.name == name:
            return f
    raise ValueError(f"unknown deployment format {name!r}; known: {', '.join(FORMAT_NAMES)}")


def require(fmt: Format | str):
    """Import every package ``fmt`` needs, or raise an ImportError that says how to install them."""
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    missing = fmt.missing()
    if missing:
        raise ImportError(f"the {fmt.name} export check needs {', '.join(missing)}: {fmt.install_hint(missing)}")
    return [importlib.import_module(mod) for mod, _ in fmt.packages]


def import_openvino():
    """The ``openvino`` module, or an ImportError that says how to install it (the ``deploy`` extra)."""
    try:
        import openvino
    except ImportError as exc:
        raise ImportError(f"OpenVINO is needed here: {DEPLOY_HINT} (or pip install openvino nncf)") from exc
    return openvino


_VERSIONED = ("torch", "ultralytics", "onnx", "onnxruntime", "onnxslim", "openvino", "nncf", "ncnn", "pnnx",
              "litert-torch", "ai-edge-litert", "coremltools", "numpy")


def versions() -> dict[str, str]:
    """Installed versions of the packages the checks depend on (absent ones left out), and the platform."""
    from .._versions import installed_versions

    return installed_versions(_VERSIONED)
