"""LAB ONLY — the simulators and the demo's orchestration, kept out of the production packages.

Why a package of its own: the appliance promises that it never listens on a port and that its
code never contains the lab simulators (DESIGN §6). The simulators here do listen (a WS-Management
server, a lab sshd, SNTP responders, the farm's chaos endpoint, all on 127.0.0.1), so they cannot
live under ``osiris_agent`` or ``osiris_tui``:

* ``wsman``   — :class:`~osiris_lab.wsman.WsmanLabServer`, a Windows host speaking WS-Management
  to the real pywinrm client;
* ``windows`` — :class:`~osiris_lab.windows.WindowsLabHost`, the Windows host model that answers
  catalogue runbook phases and takes injected faults;
* ``linux``   — :class:`~osiris_lab.linux.LinuxSandbox` and :class:`~osiris_lab.linux.LabSshd`,
  a sandboxed Linux host behind a real local sshd;
* ``farm``    — the process hosting the demo's simulated hosts (``python -m osiris_lab.farm``);
* ``demo``    — ``osiris demo``'s orchestration: server, farm, agents, console or headless run.

The rules, each checked by a test:

* no production package (``osiris_core``, ``osiris_agent``, ``osiris_server``, ``osiris_tui``)
  imports ``osiris_lab``, not even inside a function — with one documented exception: the
  ``osiris demo`` command in ``osiris_tui/cli/demo.py`` imports :mod:`osiris_lab.demo` lazily,
  inside the command, because the demo is a developer/lab tool (``tests/test_layering.py``);
* ``osiris-agent`` (``--help`` and every subcommand's import) loads no ``osiris_lab`` module;
  the agent keeps its lab *switches* (``agent.lab``, ``enroll --lab``, a target's ``lab`` flag:
  plain HTTP and Basic auth towards the simulators), never simulator code
  (``tests/test_layering.py``);
* the Nix package — the one the appliance image and the NixOS modules install — leaves the
  ``osiris_lab/`` directory out of its source, so no appliance contains it; the Python wheel built
  from a checkout does ship it, for ``osiris demo`` (``tests/test_nix.py``).

``osiris_lab`` may import the production packages (it drives the real clients and transports);
the dependency only ever points this way.
"""
