"""``egt score``: the resumable response-entropy scoring run over the library's recorder and statistics.

``config`` — :class:`ScoringConfig` (light: ``egt score --help`` imports it); ``run`` — the
single-process run (:func:`score_pool`); ``sharded`` — data-parallel scoring under ``accelerate
launch``; ``rescore`` — ``egt score --rescore``. Nothing is imported here, so reading the config
does not load torch.
"""
