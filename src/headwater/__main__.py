"""``python -m headwater``: the same as the ``headwater`` command (the run supervisor starts its worker so)."""

from headwater.cli import main

main()
