"""Orchestration: runs that put the library packages together (the EGT experiment, the demo).

Everything here *uses* ``egt.lab``, ``egt.train``, ``egt.entropy``, ``egt.analysis``,
``egt.curation``, ``egt.rl`` and ``egt.evaluation``; nothing in those packages imports this one.
Commands in ``egt.commands`` stay one-screen entries over these functions.
"""
