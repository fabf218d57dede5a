"""`python -m tfdsmlp ...`: see `tfdsmlp.cli`."""

from tfdsmlp.cli import main

raise SystemExit(main())
