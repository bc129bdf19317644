"""Size and decode speed of the camera-image codecs of :mod:`robot_skills.data.images`.

For each codec (HDF5 gzip / lzf filters with one chunk per frame; PNG / JPEG bytes encoded with
OpenCV) the frames of one demonstration are written to an HDF5 file and read back: bytes per
frame, compression ratio against raw uint8, encode (write) and decode (read) frames per second —
sequential (a whole demo) and random single frames (what a training loader does) — and the
mean / max absolute error of the round trip.

Frames come from a demonstration file (``--demos``; every camera of its first demo) or, without
one, from one scripted-expert episode of ``put_the_bowl_on_the_plate`` rendered here with the
agent-view and wrist cameras at ``--size`` pixels (needs the simulator and LIBERO's task files)::

    MUJOCO_GL=egl python benchmarks/image_codecs.py --size 128
    python benchmarks/image_codecs.py --demos outputs/libero_goal_visuomotor/demos.hdf5
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from robot_skills.data.images import CODECS, camera_datasets, read_frames, write_frames


def frames_from_demos(path: Path) -> dict[str, np.ndarray]:
    """Every camera of the first demo of ``path``: name -> ``(T, H, W, 3)`` uint8."""
    from robot_skills.data.hdf5 import DemoReader

    with DemoReader(path) as r:
        cams = camera_datasets(r._group(r.demos[0])["obs"])
        if not cams:
            raise SystemExit(f"{path}: the first demo has no camera images")
        return {c: read_frames(ds) for c, ds in cams.items()}


def frames_from_sim(size: int) -> dict[str, np.ndarray]:
    """One expert episode rendered with the agent-view and wrist cameras at ``size`` px."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from robot_skills.data.collect import NoiseConfig, run_expert_episode
    from robot_skills.data.images import observation_images
    from robot_skills.tasks.suites import resolve_suite
    from sim.factories import ExpertSkills, SimWorldFactory

    task = resolve_suite("libero_goal") / "put_the_bowl_on_the_plate.bddl"
    world = SimWorldFactory(robot={"name": "panda"}, cameras=("agentview", "panda/wrist_cam"),
                            image_size=(size, size))(task, 1000, None)
    world.robot.connect()
    try:
        _, ep, _ = run_expert_episode(world, ExpertSkills()(task), 1000, NoiseConfig(), 600)
    finally:
        world.robot.disconnect()
    return observation_images(ep.observations)


def bench(frames: np.ndarray, codec: str, tmp: Path, reads: int = 200) -> dict[str, float]:
    """Write + read ``frames`` with ``codec``; sizes in bytes, speeds in frames/s."""
    path = tmp / f"{codec}.hdf5"
    t0 = time.perf_counter()
    with h5py.File(path, "w") as f:
        ds = write_frames(f.create_group("obs"), "cam_image", frames, codec, camera="cam")
        stored = (ds.id.get_storage_size() if codec in ("gzip", "lzf")
                  else sum(len(b) for b in ds[()]))
    t_write = time.perf_counter() - t0
    with h5py.File(path, "r") as f:
        ds = f["obs/cam_image"]
        t0 = time.perf_counter()
        back = read_frames(ds)
        t_seq = time.perf_counter() - t0
        rng = np.random.default_rng(0)
        idx = rng.integers(0, len(frames), reads)
        t0 = time.perf_counter()
        for i in idx:
            read_frames(ds, slice(int(i), int(i) + 1))
        t_rand = time.perf_counter() - t0
    err = np.abs(back.astype(np.int16) - frames.astype(np.int16))
    n = len(frames)
    return {"bytes_per_frame": stored / n, "ratio": frames[0].nbytes * n / stored,
            "encode_fps": n / t_write, "decode_fps": n / t_seq, "random_fps": reads / t_rand,
            "mae": float(err.mean()), "max_err": float(err.max())}


def main(argv: list[str] | None = None) -> None:
    """Print the codec table (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demos", type=Path, default=None, help="take frames from this demo file")
    p.add_argument("--size", type=int, default=128, help="render size without --demos (px)")
    args = p.parse_args(argv)
    cams = frames_from_demos(args.demos) if args.demos else frames_from_sim(args.size)
    print(f"{'camera':<16} {'codec':<5} {'B/frame':>8} {'ratio':>6} {'enc f/s':>8} "
          f"{'dec f/s':>8} {'rand f/s':>8} {'MAE':>5} {'max':>4}")
    with tempfile.TemporaryDirectory() as d:
        for cam, frames in cams.items():
            for codec in CODECS:
                r = bench(frames, codec, Path(d))
                print(f"{cam:<16} {codec:<5} {r['bytes_per_frame']:8.0f} {r['ratio']:6.1f} "
                      f"{r['encode_fps']:8.0f} {r['decode_fps']:8.0f} {r['random_fps']:8.0f} "
                      f"{r['mae']:5.2f} {r['max_err']:4.0f}")
            print(f"{cam:<16} raw   {frames[0].nbytes:8d}    1.0  ({len(frames)} frames "
                  f"{frames.shape[1]}x{frames.shape[2]})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
