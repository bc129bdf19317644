"""Skills: the contract vocabulary (verbs), the on-disk skill format and the skill library."""
