# Builds the extension with the project's CMake (python/CMakeLists.txt), not with setuptools'
# compiler: the module links the same veipipe_core as the `veipipe` command.
#
# VEIPIPE_BUILD_DIR=<a build directory configured with -DVEIPIPE_PYTHON=ON> reuses it (tests/python_test.sh
# does, so as not to compile the core twice); otherwise a build directory of its own is configured
# under setuptools' build_temp, with ccache when it is installed.
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCE_TREE = Path(__file__).resolve().parent.parent


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = os.environ.get("VEIPIPE_BUILD_DIR")
        if build_dir:
            build_dir = Path(build_dir).resolve()
        else:
            build_dir = Path(self.build_temp).resolve() / "cmake"
            configure = ["cmake", "-S", str(SOURCE_TREE), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                         "-DVEIPIPE_PYTHON=ON", "-DVEIPIPE_BUILD_BENCHMARKS=OFF", f"-DPython_EXECUTABLE={sys.executable}"]
            if shutil.which("ninja"):
                configure += ["-G", "Ninja"]
            if shutil.which("ccache"):
                configure += ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache", "-DCMAKE_C_COMPILER_LAUNCHER=ccache"]
            subprocess.run(configure, check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "veipipe_python", "-j", jobs], check=True)
        built = sorted((build_dir / "python").glob("veipipe*.so"))
        if len(built) != 1:
            raise RuntimeError(f"{build_dir}/python: expected one veipipe*.so, found {[str(b) for b in built]}")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], target)


setup(py_modules=[], ext_modules=[Extension("veipipe", sources=[])], cmdclass={"build_ext": CMakeBuild})
