"""rs-eval's exit status: what counts as a run that could not do what was asked."""

from robot_skills.cli import incomplete_run


def _results(base_not_run=0, pert_not_run=0, pert_not_built=0, skipped=None):
    return {"skipped_tasks": skipped or {},
            "suite": {"n_not_run": base_not_run, "n_not_built": base_not_run},
            "perturbations": {"distractors5": {"suite": {"n_not_run": pert_not_run,
                                                         "n_not_built": pert_not_built}}}}


def test_a_complete_run_is_complete() -> None:
    assert incomplete_run(_results()) == ""


def test_not_built_under_a_perturbation_is_a_measured_outcome_not_an_incomplete_run() -> None:
    assert incomplete_run(_results(pert_not_run=3, pert_not_built=3)) == ""


def test_perturbed_episodes_that_went_invalid_make_the_run_incomplete() -> None:
    assert incomplete_run(_results(pert_not_run=3, pert_not_built=1)) == \
        "2 episode(s) did not run"


def test_unperturbed_episodes_not_built_and_skipped_tasks_make_the_run_incomplete() -> None:
    msg = incomplete_run(_results(base_not_run=2, skipped={"t1": "PlacementError"}))
    assert "1 task(s) skipped (t1)" in msg and "2 episode(s) did not run" in msg
