"""Chat templates shipped with the project (Jinja files in chat/templates/)."""

from __future__ import annotations

from pathlib import Path

from agent_lightning.errors import UserError

TEMPLATES_DIR = Path(__file__).parent / "templates"


def load_template(name_or_path: str) -> str:
    """Return the Jinja text of a shipped template (by stem, e.g. 'mistral_v3') or of a file path."""
    path = Path(name_or_path)
    if not path.is_file():
        path = TEMPLATES_DIR / f"{name_or_path}.jinja"
    if not path.is_file():
        shipped = sorted(p.stem for p in TEMPLATES_DIR.glob("*.jinja"))
        raise UserError(
            f"chat template '{name_or_path}' not found. Give a .jinja file path or one of: {', '.join(shipped)}."
        )
    return path.read_text()
