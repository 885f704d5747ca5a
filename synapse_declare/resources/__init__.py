"""Resource kinds: one module per kind, mapped by :mod:`.registry` (see CONTRIBUTING.md).

This package's ``__init__`` imports nothing, so low layers (the model builds its addresses with
:class:`.base.Address`) can import :mod:`.base` without pulling in every kind.
"""
