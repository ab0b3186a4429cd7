"""The wiring: a Config in, a training run out; and the command line around it.

``build`` is the one place that chooses the decoder, loads the model, picks the task and its
tool, and installs the toy's diagnostics hook; ``cli`` is ``python -m elpo_min``. It sits
outside the core because it is the only code that knows every subpackage: the core takes what
it builds as arguments.
"""

from .build import build_run, make_engine, run_training
from .config_io import load_config, parse_overrides, validate_config
