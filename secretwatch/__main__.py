"""``python -m secretwatch``."""

from secretwatch._cli.main import main

main()
