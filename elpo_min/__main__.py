"""``python -m elpo_min``: see :mod:`elpo_min.launch.cli`."""

from .launch.cli import main

if __name__ == "__main__":
    main()
