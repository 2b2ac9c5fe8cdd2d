"""Build hook only (the project's metadata is in pyproject.toml): ``yolo_attn-autoload.pth`` goes to the root of the
wheel, that is into site-packages, where Python runs it at start-up (_yolo_attn_autoload.py says what it does).

A wheel lists the file in its RECORD, so ``pip uninstall yolo_attn`` removes it. An editable install
(``pip install -e .``) gets it too: setuptools' editable wheel takes what is written into its unpacked tree, the
``install_lib`` folder of that build, next to its own ``__editable__`` finder.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "yolo_attn-autoload.pth"


class build_py_with_pth(build_py):  # noqa: N801 - setuptools' command naming
    def run(self):
        super().run()
        folder = self.get_finalized_command("install").install_lib if self.editable_mode else self.build_lib
        self.copy_file(str(Path(__file__).resolve().parent / PTH), str(Path(folder) / PTH), preserve_mode=False)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        return outputs if self.editable_mode else [*outputs, str(Path(self.build_lib) / PTH)]


setup(cmdclass={"build_py": build_py_with_pth})
