"""Agent Lightning entry point: `python main_agent_lightning.py --algo grpo` (see README and agent_lightning.cli)."""

import sys
from pathlib import Path

try:
    from agent_lightning.cli import main
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from agent_lightning.cli import main

if __name__ == "__main__":
    sys.exit(main())
