"""`python -m osiris_tui.cli …` runs `osiris …` (the tests and the docs use it)."""

from . import main

if __name__ == "__main__":  # importing this module (a package walk) must not run the CLI
    main()
