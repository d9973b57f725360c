"""Build hook: everything else is in pyproject.toml.

The wheel (and the editable install `make setup` does) also gets ``vllm_doks_node.pth`` at the
top of site-packages. Python runs a ``.pth`` file's ``import`` line at interpreter start
(``site`` module), so ``JSII_NODE`` points at the bundled Node 22 before any jsii library
(cdk8s, cdktf) can start its Node kernel, whatever the import order of the user's code.
"""

from __future__ import annotations

import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "vllm_doks_node.pth"


class BuildPyWithPth(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(os.path.join("constructs", PTH), os.path.join(self._pth_dir(), PTH))

    def _pth_dir(self) -> str:
        if self.editable_mode:
            # An editable wheel keeps only the project's packages from build_lib; files for
            # the top of site-packages go straight into the unpacked wheel, which is where
            # setuptools' editable_wheel points the install command (install_lib).
            return str(self.get_finalized_command("install").install_lib)
        return str(self.build_lib)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), os.path.join(self._pth_dir(), PTH)]


setup(cmdclass={"build_py": BuildPyWithPth})
