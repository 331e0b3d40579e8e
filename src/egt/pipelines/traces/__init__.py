"""``egt traces``: EGT stage 1 on your own data — reasoning traces from a teacher, fidelity-filtered.

A teacher (an OpenAI-compatible endpoint, or a local checkpoint) judges every pair in each
presentation order with the judge's own prompt; a pair is kept when each of its traces parses
strictly and agrees with the label in its order (EGT's fidelity filter, docs/methods.md §1.1).
The kept pairs are written with ``meta.traces = [stored-order trace, swapped-order trace]``, as
``egt train sft`` reads them. Every answer is stored as it arrives, so a rerun asks only for
what is missing. ``config`` holds the options, ``teachers`` the two teachers, ``run`` the run.
"""
