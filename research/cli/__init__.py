"""The `research` command: arguments (arguments.py), what a config can name (listing.py), and
the commands themselves (commands.py), which hand a config to the run/ package."""
from research.cli.commands import main

__all__ = ['main']
