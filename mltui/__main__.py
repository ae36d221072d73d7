"""`python -m mltui` is the `mltui` command."""

from mltui.cli import main

main()
