"""Test-wide settings: headless EGL rendering unless the caller chose a GL backend."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # must precede the first `import mujoco`
