"""Arm descriptions as data: kinematics, limits, home pose and the MuJoCo model the shared IK uses."""
