"""`python -m daemon` is the same as the `tier2gate` console script."""

from daemon.cli import main

raise SystemExit(main())
