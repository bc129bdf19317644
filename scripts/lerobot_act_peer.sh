#!/usr/bin/env bash
# LeRobot's ACT policy trained on this project's libero_goal demonstrations (exported as a
# LeRobotDataset v3) and evaluated in this project's simulator through its gymnasium env: the
# "peer" figure beside the project's own skills (issue 12; docs/lerobot.md, "Training and
# evaluating LeRobot's ACT").
#
# Usage:
#   scripts/lerobot_act_peer.sh                    # collect task-goal demos with rs-collect first
#   scripts/lerobot_act_peer.sh DEMOS.hdf5 [...]   # reuse demo files (their task-goal episodes)
#
# Steps:
#   1. (no DEMOS given) `rs-collect suite=libero_goal collect.mode=task` -> $OUT/collect/demos.hdf5
#      (20 scripted-expert episodes of each libero_goal task file's goal);
#   2. keep the task-goal episodes: successful demos without a `target_call` attribute (the
#      skill-centric episodes of a mixed file, which chase other sub-goals, are left out) ->
#      $OUT/task_goal_demos.hdf5;
#   3. export them state-only with the goal as input: `python -m robot_skills.data.lerobot
#      --task-onehot` appends a one-hot of the task to observation.environment_state (ACT reads no
#      language; libero_goal's 10 tasks share one scene, so without it the goal is unobservable);
#   4. create (once) a SEPARATE virtual environment $LEROBOT_VENV with lerobot and this project's
#      simulator requirements (mujoco, mink, ... at the project's versions); the project's own
#      .venv never gets lerobot; the project itself is used from the work tree (PYTHONPATH);
#   5. check that lerobot's LeRobotDataset loads the export;
#   6. train ACT with `lerobot-train`, a CPU-sized state-only configuration (below);
#   7. evaluate the last checkpoint with scripts/lerobot_act_eval.py: $EPISODES seeded episodes
#      per libero_goal task (seeds 0.., as rs-eval), success from the env's goal predicates,
#      per-task table + mean with 95 % Wilson CI -> $OUT/eval.json and $OUT/eval.md.
#
# ACT configuration (lerobot 0.4.4 flags; sized for 2 CPU cores, 4.3 M parameters): no image
# features (so no ResNet backbone), dim_model 256, 4 heads, feed-forward 1024, 2 encoder layers,
# 1 decoder layer, VAE on (2 encoder layers, latent 32, KL weight 10 as ACT), chunk_size 20,
# n_action_steps 1 with ACT's temporal ensembling (coefficient 0.01: the project's skills execute
# their 10-step chunks the same way, policy.ensemble_m), AdamW lr 1e-4, batch 64.
#
# Environment (defaults in brackets):
#   PROJECT_PY      python of the project's environment [.venv/bin/python]
#   LEROBOT_VENV    lerobot's virtual environment [$HOME/.cache/robot_skills/lerobot-venv]
#   LEROBOT_VERSION lerobot release to install [0.4.4; v3 datasets need >= 0.4.0]
#   LEROBOT_TORCH   if set (e.g. 2.13.0): install that torch and lerobot with --no-deps plus its
#                   other requirements, ignoring lerobot's torch<2.11 pin. This is what runs on
#                   the project's CPU machine, where only torch 2.13.0 (CPU) is on disk and
#                   PyPI's torchvision wheels are CUDA-linked: their _C extension cannot load, and
#                   torchvision's _meta_registrations.py then fails on import (it registers fake
#                   kernels for torchvision::nms/qnms unconditionally). The script guards those two
#                   registrations in the venv's copy (a sed, printed); state-only ACT uses no
#                   torchvision op.
#   OUT             output directory [outputs/lerobot_act_peer]
#   STEPS           training steps [2800: ~47 min at ~1 s/step on one CPU thread]
#   BATCH           batch size [64]
#   DEVICE          cuda / cpu / mps [cuda if torch sees one, else cpu]
#   NUM_WORKERS     DataLoader workers of lerobot-train [0: one process, one thread]
#   EPISODES        evaluation episodes per task [20]
#   SKIP_TRAIN      1: reuse $OUT/act (evaluate only)
#
# Measured on the project's CPU machine: see docs/lerobot.md (figures, time, loss curve).
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,55p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROJECT_PY="${PROJECT_PY:-$ROOT/.venv/bin/python}"
LEROBOT_VENV="${LEROBOT_VENV:-$HOME/.cache/robot_skills/lerobot-venv}"
LEROBOT_VERSION="${LEROBOT_VERSION:-0.4.4}"
OUT="$(mkdir -p "${OUT:-outputs/lerobot_act_peer}" && cd "${OUT:-outputs/lerobot_act_peer}" && pwd)"
STEPS="${STEPS:-2800}"
BATCH="${BATCH:-64}"
EPISODES="${EPISODES:-20}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 MUJOCO_GL="${MUJOCO_GL:-egl}"
cd "$ROOT"

DEMOS=("$@")
if [[ ${#DEMOS[@]} -eq 0 ]]; then
  echo "== 1. collect task-goal demos (rs-collect) -> $OUT/collect"
  "$(dirname "$PROJECT_PY")/rs-collect" suite=libero_goal collect.mode=task \
    collect.demos_per_task=20 run_dir="$OUT/collect"
  DEMOS=("$OUT/collect/demos.hdf5")
fi

echo "== 2. task-goal episodes of ${DEMOS[*]} -> $OUT/task_goal_demos.hdf5"
rm -f "$OUT/task_goal_demos.hdf5"
"$PROJECT_PY" - "$OUT/task_goal_demos.hdf5" "${DEMOS[@]}" <<'EOF'
import sys

from robot_skills.data.hdf5 import DemoReader, DemoWriter

out, srcs = sys.argv[1], sys.argv[2:]
kept = 0
with DemoReader(srcs[0]) as r0:
    env_args = r0.env_args
with DemoWriter(out, env_args=env_args) as w:
    for src in srcs:
        with DemoReader(src) as r:
            for name in r.demos:
                a = r.demo_attrs(name)
                if "target_call" in a or not bool(a.get("success", False)):
                    continue
                w.copy_demo(r, name)
                kept += 1
if not kept:
    sys.exit(f"no task-goal episodes in {srcs}")
print(f"kept {kept} task-goal demos")
EOF

echo "== 3. export (state only, task one-hot) -> $OUT/dataset"
"$PROJECT_PY" -m robot_skills.data.lerobot "$OUT/task_goal_demos.hdf5" "$OUT/dataset" \
  --task-onehot --overwrite

echo "== 4. lerobot environment $LEROBOT_VENV"
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
  # the simulator's requirements, at the project environment's versions (same physics)
  PINS="$("$PROJECT_PY" -c 'import importlib.metadata as m
print(" ".join(f"{p}=={m.version(p)}" for p in
      ("mujoco", "mink", "daqp", "h5py", "safetensors", "hydra-core", "omegaconf", "pyyaml",
       "tqdm", "pyarrow")))')"
  # shellcheck disable=SC2086
  "$PIP" install $PINS
fi
LPY="$LEROBOT_VENV/bin/python"
if ! "$LPY" -c 'import torchvision' 2>/dev/null; then
  TV="$("$LPY" -c 'import importlib.util as u; print(u.find_spec("torchvision").submodule_search_locations[0])')"
  echo "torchvision does not import (CUDA-linked _C without CUDA torch): guarding its fake-kernel"
  echo "registrations in $TV/_meta_registrations.py"
  sed -i -E 's/^@torch.library.register_fake\("(torchvision::[a-z_]+)"\)$/@(torch.library.register_fake("\1") if torchvision.extension._has_ops() else (lambda f: f))/' \
    "$TV/_meta_registrations.py"
  "$LPY" -c 'import torchvision'
fi
DEVICE="${DEVICE:-$("$LPY" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')}"

echo "== 5. LeRobotDataset loads the export"
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

if [[ "${SKIP_TRAIN:-0}" != 1 ]]; then
  echo "== 6. train ACT ($STEPS steps, batch $BATCH, $DEVICE) -> $OUT/act"
  rm -rf "$OUT/act"
  start=$(date +%s)
  "$LEROBOT_VENV/bin/lerobot-train" \
    --dataset.repo_id=local/robot_skills --dataset.root="$OUT/dataset" \
    --policy.type=act --policy.push_to_hub=false --policy.device="$DEVICE" \
    --policy.dim_model=256 --policy.n_heads=4 --policy.dim_feedforward=1024 \
    --policy.n_encoder_layers=2 --policy.n_decoder_layers=1 --policy.n_vae_encoder_layers=2 \
    --policy.chunk_size=20 --policy.n_action_steps=1 --policy.temporal_ensemble_coeff=0.01 \
    --policy.optimizer_lr=1e-4 \
    --output_dir="$OUT/act" --steps="$STEPS" --batch_size="$BATCH" --seed=1000 \
    --num_workers="${NUM_WORKERS:-0}" --eval_freq=0 --log_freq=100 \
    --save_freq="$(( STEPS / 4 > 0 ? STEPS / 4 : 1 ))" --wandb.enable=false 2>&1 \
    | tee "$OUT/train.log"
  echo "training took $(( $(date +%s) - start )) s"
fi

echo "== 7. evaluate $OUT/act/checkpoints/last in the simulator ($EPISODES episodes per task)"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$LPY" "$ROOT/scripts/lerobot_act_eval.py" \
  "$OUT/act/checkpoints/last/pretrained_model" "$OUT/dataset" --suite libero_goal \
  --episodes "$EPISODES" --device "$DEVICE" --out "$OUT/eval.json"
