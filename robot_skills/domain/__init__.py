"""The planning domain: predicate atoms, entity affordance tags and the skill verbs' contracts."""
