"""Options that several commands share, defined once."""
from __future__ import annotations

import frameworks


def add_variant(p) -> None:
    """--variant, with the one default of every command."""
    p.add_argument("--variant", default="fast", choices=list(frameworks.VARIANTS),
                   help="fast: the whole epoch compiled, the same math (checked against book); book: the chapter's "
                        "code (model.fit, a DataLoader loop) (default fast)")
