"""Planning over skills: symbolic state, the skill domain, and planners.

``symbolic``: :class:`~robot_skills.planning.symbolic.SymbolicPlanner` (A* after
:func:`~robot_skills.planning.symbolic.relevance_analysis`, which rejects unreachable goals
before any search); ``validate``: plan validation and repair.
"""
