"""Training loops that report through events (see :mod:`rnnplay.training.events`). No printing."""
