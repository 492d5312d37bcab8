"""The appliance agent (DESIGN §1)."""

AGENT_VERSION = "0.1.0"
