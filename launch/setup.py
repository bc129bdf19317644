"""colcon / ament_python build of the ROS 2 package ``robot_skills_bridge``.

The repository's top level is fixed (pyproject.toml, robot_skills/, sim/, hardware/, configs/,
launch/, ...), so the ROS package lives here, in ``launch/``: this file installs the Python
packages from the repository root (``package_dir={"": ".."}``), the launch files, their parameter
files and the hardware presets into ``share/robot_skills_bridge``, the ament resource marker, and
the executables the launch files name (``lib/robot_skills_bridge/{sim_twin,executor,rs_bridge}``,
see setup.cfg). In a ROS 2 workspace::

    rosdep install --from-paths src --ignore-src -y     # ROS keys of package.xml
    pip install -e src/robot-skills                       # PyPI-only dependencies (torch, mujoco)
    colcon build --packages-select robot_skills_bridge
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "robot_skills_bridge"
ROOT = ".."

setup(
    name=PACKAGE,
    version="0.1.0",
    package_dir={"": ROOT},
    packages=find_packages(ROOT, include=["robot_skills*", "sim*", "hardware*"]),
    package_data={"": ["*.yaml", "*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("*.launch.py")),
        (f"share/{PACKAGE}/params", glob("params/*.yaml")),
        (f"share/{PACKAGE}/configs/hardware", glob(f"{ROOT}/configs/hardware/*.yaml")),
        (f"share/{PACKAGE}/configs/planner", glob(f"{ROOT}/configs/planner/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="robot-skills maintainers",
    maintainer_email="robot-skills@example.org",
    description="robot-skills over ROS 2: skill executor, bridge, sim twin, launch files",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_twin = sim.ros_twin:main",
            "executor = hardware.executor_node:main",
            "rs_bridge = hardware.bridge:main",
        ],
    },
)
