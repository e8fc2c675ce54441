"""`python -m autotune` is the `autotune` command."""

from autotune.search.cli import main

raise SystemExit(main())
