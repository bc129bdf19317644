"""MuJoCo simulation: Panda arm, LIBERO BDDL task files, proxy assets, gym env, scripted experts."""
