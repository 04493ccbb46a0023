"""Training objectives as units of their own: each one names its loss, its settings, the data it reads and how
the model computes it (``objectives.base``). ``objectives.registry`` lists them; the schedule composes them
by name and the aligned model's forward computes those whose batch fields it is given."""
