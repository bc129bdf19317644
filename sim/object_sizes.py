"""Record entity sizes (the skills' shape descriptor) in demonstration files written before
observations carried them.

Demonstrations collected since ``Observation.object_sizes`` exists store each demo's sizes as its
``object_sizes`` attribute (:class:`robot_skills.data.hdf5.DemoWriter`). For an older file the
sizes are rebuilt from each demo's task file: the scene is built as the collector built it
(:class:`sim.sim_robot.SimRobot`) and its :meth:`~robot_skills.perception.PoseWorldModel.entity_sizes`
written to the demo, so training on the old file sees exactly what a new collection records.
Sizes do not depend on the seed or the region scale (objects' and regions' extents are fixed by
the task file and the assets).

Command line::

    python -m sim.object_sizes outputs/t90/demos.hdf5 [more.hdf5 ...] [--force]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from robot_skills.data.hdf5 import parse_object_sizes, sizes_attr
from robot_skills.utils.atomic import atomic_temp_path


def scene_sizes(bddl_path: str | Path) -> dict[str, np.ndarray]:
    """Entity -> ``(3,)`` float64 half extents, m, of the scene built from ``bddl_path``, as
    :attr:`SimRobot.object_sizes <sim.sim_robot.SimRobot>` reports them.

    Raises:
        FileNotFoundError: no such task file. Errors of the scene builder on a task it rejects.
    """
    from sim.sim_robot import SimRobot

    p = Path(bddl_path)
    if not p.is_file():
        raise FileNotFoundError(f"task file {p} not found")
    return dict(SimRobot(p).object_sizes)


def backfill_object_sizes(path: str | Path, *, force: bool = False) -> dict[str, int]:
    """Give every demo of ``path`` without an ``object_sizes`` attribute the sizes of its task's
    scene (its ``bddl`` attribute), in place and atomically (a copy is edited, then renamed over
    ``path``; on any error ``path`` is untouched).

    Args:
        path: a demonstration file (:mod:`robot_skills.data.hdf5` layout).
        force: rewrite demos that already have sizes too.

    Returns:
        ``{"demos": N, "written": n, "kept": k, "tasks": t}``.

    Raises:
        FileNotFoundError: ``path`` or a demo's task file is missing.
        ValueError: a demo without a ``bddl`` attribute, or an entity of a demo's recorded poses
            that its scene gives no size (the file and demo are named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"demonstration file {path} not found")
    cache: dict[str, dict[str, np.ndarray]] = {}
    written = kept = n = 0
    with atomic_temp_path(path) as tmp:
        shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+") as f:
            for name, g in f["data"].items():
                n += 1
                where = f"{path}:{name}"
                if "object_sizes" in g.attrs and not force:
                    parse_object_sizes(g.attrs["object_sizes"], where)  # refuse a bad one
                    kept += 1
                    continue
                bddl = g.attrs.get("bddl")
                if bddl is None:
                    raise ValueError(f"{where}: no 'bddl' attribute; cannot rebuild its scene")
                bddl = bddl.decode() if isinstance(bddl, bytes) else str(bddl)
                if bddl not in cache:
                    cache[bddl] = scene_sizes(bddl)
                sizes = cache[bddl]
                recorded = list(g["obs/object_poses"]) if "obs/object_poses" in g else []
                missing = [e for e in recorded if e not in sizes]
                if missing:
                    raise ValueError(f"{where}: entities {missing} of the recorded poses have no "
                                     f"size in the scene of {bddl}")
                g.attrs["object_sizes"] = sizes_attr({e: sizes[e] for e in recorded})
                written += 1
    return {"demos": n, "written": written, "kept": kept, "tasks": len(cache)}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: backfill each file given; exit 1 on the first error (that file untouched)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--force", action="store_true", help="rewrite sizes already present")
    a = ap.parse_args(argv)
    for p in a.files:
        try:
            r = backfill_object_sizes(p, force=a.force)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"{p}: {r['written']} of {r['demos']} demos given sizes ({r['kept']} had them), "
              f"{r['tasks']} task scenes built")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
