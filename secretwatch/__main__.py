"""``python -m secretwatch``."""

from secretwatch._cli import main

main()
