"""Orchestration: runs that put the library packages together (the EGT experiment, the demo, ``egt score``).

Everything here *uses* ``egt.lab``, ``egt.train``, ``egt.entropy``, ``egt.analysis``,
``egt.curation``, ``egt.rl`` and ``egt.evaluation``; nothing in those packages imports this one.
``scoring`` is the resumable scoring run (single-process, data-parallel, rescore), ``judges``
turns a ``--model`` value into a judge, ``rq1`` scores then analyses the lab's pool. Commands in
``egt.commands`` stay one-screen entries over these functions.
"""
