"""Policies: goal-conditioned behaviour cloning with action chunking, and LoRA adapters."""
