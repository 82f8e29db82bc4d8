#!/bin/sh
# Build /opt/venv from a requirements file, as small as it can be while every import works:
#   slim-venv.sh REQUIREMENTS CONSTRAINTS
# - no bytecode at install (the runtime stage compiles only what the roles import);
# - test suites, headers and Cython sources of the big wheels removed;
# - pyarrow's Flight libraries and onnxruntime's C-API library removed: nothing in
#   Python links them (the Python binding is a self-contained extension module);
# - debug symbols stripped from the shared libraries when binutils is present;
# - no pip, setuptools or wheel inside the venv: the base image's pip installs into it.
set -eu
req=$1
constraints=$2
python3 -m venv --without-pip /opt/venv
python3 -m venv /opt/pip
/opt/pip/bin/pip install --quiet --upgrade pip
/opt/pip/bin/pip --python /opt/venv/bin/python install --quiet --no-compile \
  -c "$constraints" -r "$req"
sp=$(echo /opt/venv/lib/python3*/site-packages)
find "$sp" -depth -type d -name tests \
  \( -path '*/pandas/*' -o -path '*/scipy/*' -o -path '*/sklearn/*' -o -path '*/numpy/*' \
     -o -path '*/pyarrow/*' -o -path '*/matplotlib/*' \) -exec rm -rf {} +
rm -rf "$sp"/pyarrow/include "$sp"/pyarrow/*flight* \
       "$sp"/pyarrow/*.pyx "$sp"/pyarrow/*.pxd "$sp"/pyarrow/src \
       "$sp"/onnx/backend/test/data "$sp"/onnxruntime/capi/libonnxruntime.so* \
       "$sp"/numpy/_core/include "$sp"/numpy/f2py/src
find /opt/venv -name __pycache__ -type d -prune -exec rm -rf {} +
if command -v strip >/dev/null; then
  # Not the libraries auditwheel vendored into *.libs/: patchelf rewrote their headers and
  # strip leaves them unloadable ("ELF load command address/offset not page-aligned").
  find /opt/venv -type f -name '*.so*' ! -path '*.libs/*' \
    -exec strip --strip-unneeded {} + 2>/dev/null || true
else
  echo "slim-venv: binutils' strip is not available; shared libraries keep their symbols" >&2
fi
rm -rf /opt/pip
