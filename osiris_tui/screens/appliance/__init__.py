"""The appliance screen: ``screen.ApplianceScreen`` and one module per tab (see screen.py)."""

from .screen import ApplianceScreen

__all__ = ["ApplianceScreen"]
