"""`python -m agent_lightning ...`: the same command line as `main_agent_lightning.py` and `agent-lightning`."""

from agent_lightning.cli import main

raise SystemExit(main())
