"""Command palette (ctrl+p): every view and alias of the `:` command bar."""

from __future__ import annotations

from textual.command import Hit, Hits, Provider

from .app import ALIASES

LABELS = {
    "fleet": "Fleet: sites and appliances",
    "provision": "Provisioning: claim codes",
    "audit": "Audit log",
    "activity": "Activity log of this session",
    "tab:drift": "Appliance: drift",
    "tab:runbooks": "Appliance: runbooks",
    "tab:credentials": "Appliance: credentials",
    "tab:evidence": "Appliance: evidence and verify",
    "tab:incidents": "Appliance: incidents",
    "tab:orders": "Appliance: orders",
    "quit": "Quit",
}


class OsirisCommands(Provider):
    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for target, label in LABELS.items():
            words = [a for a, t in ALIASES.items() if t == target]
            text = f"{label} (:{', :'.join(words)})" if words else label
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), lambda t=target: self.app.go(t))
