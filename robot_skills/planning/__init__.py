"""Planning over skills: symbolic state, the skill domain, and planners."""
