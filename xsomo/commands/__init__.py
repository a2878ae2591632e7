"""Subcommands of the ``xsomo`` CLI: each module has ``add_parser(subparsers)`` and ``run(args)``."""
