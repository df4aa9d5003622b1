"""`python -m xuetu` runs the CLI."""

from xuetu.cli import main

main()
