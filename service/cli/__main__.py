"""`python -m service.cli`: the `logitsearch` command."""

from . import main

raise SystemExit(main())
