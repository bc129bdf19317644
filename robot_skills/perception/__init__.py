"""Predicate state from object poses alone (what a real arm's perception stack provides)."""
