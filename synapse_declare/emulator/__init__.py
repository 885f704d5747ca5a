"""A faithful local Synapse: the REST API over HTTP, state in SQLite, S3/STS from moto's server.

Needs the ``emulator`` extra (in a clone: ``pip install -c constraints.txt '.[emulator]'``).
"""

# No "from __future__ import annotations" here: it would bind the package attribute
# "annotations" and shadow the emulator.annotations submodule for "from . import annotations".
from .access_requirements import SeedAccessRequirement
from .principals import SeedTeam, SeedUser
from .server import Emulator, EmulatorConfig

__all__ = ["Emulator", "EmulatorConfig", "SeedAccessRequirement", "SeedTeam", "SeedUser"]
