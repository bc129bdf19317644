#!/usr/bin/env bash
# Train LeRobot's ACT policy on this project's demonstrations, exported as a LeRobotDataset v3:
# the "peer" baseline beside the project's own skills (issue 12).
#
# Usage:
#   scripts/lerobot_act_peer.sh DEMOS.hdf5 [DEMOS2.hdf5 ...]
#
# Steps:
#   1. export the demos with the project's own environment (rs-export-lerobot, docs/lerobot.md)
#      into $OUT/dataset;
#   2. create (once) a SEPARATE virtual environment $LEROBOT_VENV with `lerobot` in it -- never
#      the project's .venv: lerobot pins its own torch / torchvision / datasets versions;
#   3. check that lerobot's LeRobotDataset loads the export (frames, episodes, one item);
#   4. train ACT with `lerobot-train` (checkpoints under $OUT/act/checkpoints/).
#
# Environment (defaults in brackets):
#   PROJECT_PY      python of the project's environment [.venv/bin/python]
#   LEROBOT_VENV    lerobot's virtual environment [$HOME/.cache/robot_skills/lerobot-venv]
#   LEROBOT_VERSION lerobot release to install [0.4.4; v3 datasets need >= 0.4.0]
#   LEROBOT_TORCH   if set (e.g. 2.13.0): install that torch and lerobot with --no-deps plus its
#                   other requirements, ignoring lerobot's torch<2.11 pin (what was tried on the
#                   project's CPU machine, where only torch 2.13.0 wheels are available; there
#                   the CUDA-linked torchvision/torchcodec wheels do not load, so video features
#                   cannot be decoded -- state-only exports train fine)
#   OUT             output directory [outputs/lerobot_act_peer]
#   STEPS           training steps [100000, ACT's default schedule]
#   BATCH           batch size [8]
#   DEVICE          cuda / cpu / mps [cuda if torch sees one, else cpu]
#   NUM_WORKERS     DataLoader workers of lerobot-train [2]
#
# Measured on the project's CPU machine (2 shared cores, LEROBOT_TORCH=2.13.0, lerobot 0.4.4,
# one real libero_goal demo of 79 frames, STEPS=20 BATCH=8): the dataset loads (79 frames,
# observation.state (22,), observation.environment_state (154,), action (7,), task string) and
# ACT (40M parameters) trains, loss 45.9 at step 5 -> 8.0 at step 20, ~6-12 s/step.
#
# Evaluating the trained ACT in the project's simulator (the peer success rate for the README)
# needs the project's gymnasium environment and an adapter from ACT's observation dict to the
# project's Observation; that is not part of this script yet.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROJECT_PY="${PROJECT_PY:-$ROOT/.venv/bin/python}"
LEROBOT_VENV="${LEROBOT_VENV:-$HOME/.cache/robot_skills/lerobot-venv}"
LEROBOT_VERSION="${LEROBOT_VERSION:-0.4.4}"
OUT="${OUT:-outputs/lerobot_act_peer}"
STEPS="${STEPS:-100000}"
BATCH="${BATCH:-8}"

mkdir -p "$OUT"
echo "== 1. export $* -> $OUT/dataset"
"$PROJECT_PY" -m robot_skills.data.lerobot "$@" "$OUT/dataset" --overwrite

echo "== 2. lerobot environment $LEROBOT_VENV"
if [[ ! -x "$LEROBOT_VENV/bin/lerobot-train" ]]; then
  python3 -m venv "$LEROBOT_VENV"
  PIP="$LEROBOT_VENV/bin/pip"
  if [[ -n "${LEROBOT_TORCH:-}" ]]; then
    "$PIP" install "torch==$LEROBOT_TORCH"
    "$PIP" install --no-deps "lerobot==$LEROBOT_VERSION"
    # lerobot's requirements except the torch-pinned ones (torch, torchvision, torchcodec)
    "$PIP" install "torch==$LEROBOT_TORCH" torchvision "datasets>=4,<5" \
      "huggingface-hub[hf-transfer]>=0.34.2,<0.36" pandas jsonlines "draccus==0.10.0" \
      "einops>=0.8,<0.9" "av>=15,<16" "imageio[ffmpeg]" termcolor "deepdiff>=7,<9" \
      "packaging>=24.2,<26" "gymnasium>=1.1.1,<2" "opencv-python-headless<4.13" \
      "accelerate>=1.10,<2" pyserial "pynput>=1.7.7,<1.9" "wandb>=0.24,<0.25" \
      "rerun-sdk>=0.24,<0.27" "diffusers>=0.27.2,<0.36"
  else
    "$PIP" install "lerobot==$LEROBOT_VERSION"
  fi
fi
LPY="$LEROBOT_VENV/bin/python"
DEVICE="${DEVICE:-$("$LPY" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')}"

echo "== 3. LeRobotDataset loads the export"
"$LPY" - "$OUT/dataset" <<'EOF'
import sys

import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

ds = LeRobotDataset("local/robot_skills", root=sys.argv[1])
item = ds[len(ds) - 1]
print(f"{len(ds)} frames, {ds.num_episodes} episodes, fps {ds.fps}")
print({k: tuple(v.shape) for k, v in item.items()
       if isinstance(v, torch.Tensor) and not k.startswith("robot_skills.")}, item["task"])
EOF

echo "== 4. train ACT ($STEPS steps, batch $BATCH, $DEVICE) -> $OUT/act"
rm -rf "$OUT/act"
"$LEROBOT_VENV/bin/lerobot-train" \
  --dataset.repo_id=local/robot_skills --dataset.root="$OUT/dataset" \
  --policy.type=act --policy.push_to_hub=false --policy.device="$DEVICE" \
  --output_dir="$OUT/act" --steps="$STEPS" --batch_size="$BATCH" \
  --num_workers="${NUM_WORKERS:-2}" --eval_freq=0 --wandb.enable=false
echo "ACT checkpoints: $OUT/act/checkpoints"
