"""robot-skills: goal-conditioned manipulation skills learned from demonstrations, composed by planners.

The package defines the one robot interface (:mod:`robot_skills.robot`) that the MuJoCo simulator
(``sim``) and the ROS 2 bridge (``hardware``) both implement. It never imports ``hardware``.
"""

__version__ = "0.1.0"
