"""Self-healing: L1 signed rules, L2 guarded planner, L3 incidents, one guarded executor.

Entry points for the agent cycle: :class:`osiris_agent.healing.engine.HealingEngine`
(``handle(finding, policy)``, ``run_order(order, host_id, policy)``), :class:`~.engine.Policy`,
:class:`~.engine.Finding`, and :func:`osiris_agent.healing.l1.verify_signed_rules` for the rule
set that arrives at check-in. Nothing here can run a command that is not a catalogue runbook.
"""
