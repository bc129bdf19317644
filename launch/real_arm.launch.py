"""Bridge + executor for a real arm under ros2_control, from a hardware preset.

Starts the executor node (``executor``), which holds the bridge (``Ros2Robot``: IK, safety filter,
JointTrajectory streaming) and runs the skills of the library, refusing those below the preset's
minimum trust tier. Reads ``params/real_arm.yaml`` -- the file ``rs-bridge real-arm`` reads too.
The arm's own drivers (ros2_control, joint_state_broadcaster, the gripper) are started by the
arm's bringup, not here.

    ros2 launch robot_skills_bridge real_arm.launch.py preset:=fr3 skill_library:=/abs/skills
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

PACKAGE = "robot_skills_bridge"
PARAMS = "real_arm.yaml"


def generate_launch_description():
    params = os.path.join(get_package_share_directory(PACKAGE), "params", PARAMS)
    preset = LaunchConfiguration("preset")
    library = LaunchConfiguration("skill_library")
    planner = LaunchConfiguration("planner")
    return LaunchDescription([
        DeclareLaunchArgument("preset", description="hardware preset: panda, fr3, ur5e, xarm7"),
        DeclareLaunchArgument("skill_library", description="skill library directory"),
        DeclareLaunchArgument("planner", default_value="symbolic", description="planner"),
        Node(package=PACKAGE, executable="executor", name="robot_skills_executor",
             output="screen",
             parameters=[params, {"preset": preset, "skill_library": library,
                                  "planner": planner}]),
    ])
