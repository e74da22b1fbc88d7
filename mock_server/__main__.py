"""``python -m mock_server``: the same command line as ``wavespeed-mock``."""

from mock_server.cli import main

raise SystemExit(main())
