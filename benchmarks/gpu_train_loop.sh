#!/usr/bin/env bash
# Benchmark 1 of the training engine (bench_train.py train_loop) on a CUDA machine, with
# bfloat16 autocast: what ran on the GPU machine lent to a session (docs/benchmarks.md).
#
#     benchmarks/gpu_train_loop.sh OUT [PAIRS]
#
# Needs python3 with a CUDA build of torch and hone's dependencies importable (hone itself
# from src/ is enough). HONE_COMMIT names the commit when the tree travels without .git.
# Writes OUT/gpu-train-loop.json: the RESULT and where it came from.
set -euo pipefail
out=${1:?usage: gpu_train_loop.sh OUT [PAIRS]}
pairs=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$here/../src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device")'
(cd "$here" && python3 bench_train.py "$work" --only=train_loop --device=cuda --pairs="$pairs") |
  tee "$work/log"

python3 - "$work/log" "$out/gpu-train-loop.json" <<'EOF'
import json, os, platform, subprocess, sys, time
import torch

result = next(json.loads(l[7:]) for l in open(sys.argv[1]) if l.startswith("RESULT "))
smi = subprocess.run(
    ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
    capture_output=True, text=True, check=False,
).stdout.strip()
provenance = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "commit": os.environ.get("HONE_COMMIT"),
    "gpu": smi,
    "cuda": torch.version.cuda,
    "torch": torch.__version__,
    "python": platform.python_version(),
    "cores": os.cpu_count(),
}
json.dump({"provenance": provenance, "train_loop": result}, open(sys.argv[2], "w"), indent=1)
print(json.dumps(provenance))
EOF
