"""Course mode: the checks behind the exercise notebooks in ``exercises/``, and their grader.

Students write ELPO's equations as functions; each ``check_*`` compares one of them with the
package's own on hand-worked and seeded random cases, prints ✓ per case, and at the first
failure shows the input, the expected value and what the function returned, with a hint that
names the mistake when the output is that of a usual one. The reference code is never
printed. ``python -m elpo_min.course grade PATH`` runs students' notebooks and scores them.

* ``checker``: how a check runs and how a hint is chosen (:func:`run_check`).
* ``entropy_checks`` (E1), ``search_checks`` (E2), ``credit_checks`` (E3), ``loss_checks``
  (E4): one ``check_<function>`` per function the exercises ask for, with the usual mistakes.
* ``capstone``: E5, the student's functions inside one ELPO step, and the λ_tree question.
* ``bug_hunts``: E6 and E7, the fixed functions and the students' tests against the bugs.
* ``derivation``: E8, the z-score's invariance and its ε, checked numerically.
* ``experiment``: E9, the credit AUC of λ_tree on the tiny policy's trees, recomputed.
* ``grading`` and ``__main__``: the autograder; ``estimates``: the time estimates.

It sits outside the core: nothing in training depends on it.
"""

from .bug_hunts import (
    check_batch_rows,
    check_batch_rows_tests,
    check_localize,
    check_localize_tests,
)
from .capstone import check_lambda_trees, check_training_step, sound_above_fatal
from .checker import run_check
from .credit_checks import (
    check_branch_advantages,
    check_hierarchical_advantages,
    check_node_values,
    check_trajectory_advantages,
)
from .entropy_checks import (
    check_select_failure,
    check_step_entropies,
    check_suffix_count,
    check_token_entropy,
)
from .loss_checks import check_elc_mask, check_lower_bound, check_policy_loss
from .search_checks import check_bel_search
