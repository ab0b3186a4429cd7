"""Tasks: a name in, train/test problems and a reward out.

* ``toy``: the chain-arithmetic world of :mod:`elpo_min.toy` (exact integer answers).
* ``gsm``: GSM8K-style word problems shipped in ``data/gsm_{train,val,test}.jsonl``, generated
  offline by reasoning-gym's ``gsm_symbolic`` (``python -m elpo_min make-data --task gsm``
  rewrites them byte for byte).
* ``hf:NAME[:CONFIG]``: any hub dataset in GSM8K layout (``question``, ``answer`` ending in
  ``#### N``) or MATH layout (``problem``, ``solution`` with ``\\boxed{}``), for users with
  network access.

Word-problem answers are judged by :func:`check_answer` (math-verify underneath); chat models
speak the fenced tool format of :class:`FencedFormat`. Also here: where the shipped data lives
(``files.data_dir``) and the JSONL reader every split goes through. It sits outside the core
because the core needs only a list of problems and a ``check`` callable, and the toy brings both.
"""

from .answers import answer_outcome, check_answer
from .fenced import TIR_SYSTEM_PROMPT, FencedFormat, last_boxed
from .files import data_dir, read_jsonl, write_jsonl
from .registry import Task, chat_question, load_task
from .toy_data import held_out, load_problems, make_data, problem_from_row, save_problems
from .word_problems import GSM_SPLITS, WordProblem, hub_problems, load_word_problems, make_gsm_data
