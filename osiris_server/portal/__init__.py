"""The clinic's read-only web portal (issue 19): ``/portal``, server-rendered, no JavaScript.

Who it is for: a clinic's practice manager or compliance officer, who has no account and no
token. An operator registers their address for a site (``POST /api/v1/sites/{id}/contacts``);
they ask for a link on the sign-in page; the link (single use, 15 minutes, 192 random bits,
stored hashed) opens a confirmation page whose button starts a session — a GET alone never
consumes it, so a mail scanner that follows links cannot burn it or sign anyone in.

What it promises: nothing under ``/portal`` changes anything but the sign-in state (links,
sessions, the audit). Every page is read from the same index and log the API serves, and the
compliance table is ``osiris_core.report.build_report`` — the packet report's own semantics,
never a pass for missing data.

Modules: config (``[portal]``), sessions (cookie, timeouts), signin (links, limits, mail),
views (what a page shows), chart (the SVG), pages (Jinja2 with autoescape), routes.
"""
