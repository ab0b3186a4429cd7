"""Course mode: the checks behind the exercise notebooks in ``exercises/``.

Students write ELPO's equations as functions; each ``check_*`` compares one of them with the
package's own on hand-worked and seeded random cases, prints ✓ per case, and at the first
failure shows the input, the expected value and what the function returned, with a hint when
the output is that of a usual mistake. The reference code is never printed.

* ``checker``: how a check runs (:func:`run_check`).
* ``entropy_checks`` (E1), ``search_checks`` (E2), ``credit_checks`` (E3), ``loss_checks``
  (E4): one ``check_<function>`` per function the exercises ask for, with the usual mistakes.
* ``capstone``: E5, the student's functions inside one ELPO step, and the λ_tree question.

It sits outside the core: nothing in training depends on it.
"""

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
