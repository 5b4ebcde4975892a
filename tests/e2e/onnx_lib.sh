# Sourced by the ONNX export tests after lib.sh: sets py (the Python with Debian's python3-onnx)
# and ort (onnxruntime-node's folder, installed by scripts/setup_onnxruntime.sh), or exits 77
# (skipped) saying which of the two cannot be had. Needs $root and $work.
py=/usr/bin/python3
if ! "$py" -c "import onnx, onnx.checker" 2>/dev/null; then
  echo "SKIP: the onnx Python package (Debian's python3-onnx) is not installed: run scripts/setup.sh"
  exit 77
fi
if ! ort=$(bash "$root/scripts/setup_onnxruntime.sh" 2>"$work/ort_setup.log"); then
  echo "SKIP: onnxruntime-node cannot be installed: $(tail -2 "$work/ort_setup.log")"
  exit 77
fi
