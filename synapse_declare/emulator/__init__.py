"""A faithful local Synapse: the REST API over HTTP, state in SQLite, S3/STS from moto's server.

Needs the ``emulator`` extra (``pip install 'synapse-declare[emulator]'``).
"""

from __future__ import annotations

from .principals import SeedTeam, SeedUser
from .server import Emulator, EmulatorConfig

__all__ = ["Emulator", "EmulatorConfig", "SeedTeam", "SeedUser"]
