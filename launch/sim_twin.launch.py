"""Sim twin + bridge + executor: the whole ROS 2 bridge over real DDS with no arm.

Starts the MuJoCo twin (``sim_twin``: publishes /joint_states and object poses, follows
JointTrajectory commands like a JointTrajectoryController) and the executor node (``executor``:
plans over the skill library and runs the skills through the bridge, ``Ros2Robot``, which it holds
in-process). Both read ``params/sim_twin.yaml`` -- the file ``rs-bridge sim-twin`` reads too.

    ros2 launch robot_skills_bridge sim_twin.launch.py task:=/abs/task.bddl skill_library:=/abs/skills
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

PACKAGE = "robot_skills_bridge"
PARAMS = "sim_twin.yaml"


def generate_launch_description():
    params = os.path.join(get_package_share_directory(PACKAGE), "params", PARAMS)
    task = LaunchConfiguration("task")
    library = LaunchConfiguration("skill_library")
    planner = LaunchConfiguration("planner")
    return LaunchDescription([
        DeclareLaunchArgument("task", description="BDDL task file the twin simulates"),
        DeclareLaunchArgument("skill_library", description="skill library directory"),
        DeclareLaunchArgument("planner", default_value="symbolic", description="planner"),
        Node(package=PACKAGE, executable="sim_twin", name="sim_twin", output="screen",
             parameters=[params, {"task": task}]),
        Node(package=PACKAGE, executable="executor", name="robot_skills_executor",
             output="screen",
             parameters=[params, {"task": task, "skill_library": library, "planner": planner}]),
    ])
