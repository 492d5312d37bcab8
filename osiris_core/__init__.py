"""Contracts shared by every Osiris part: pure functions and file formats, no network.

Nothing here may import osiris_agent, osiris_server or osiris_tui (tests/test_layering.py).
"""

__version__ = "0.1.0"
