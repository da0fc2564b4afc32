"""How a model is measured, defined once.

The metrics on the old and the new test sets, the target, forgetting, their intervals over
the seeds, and a strategy's record of them.
"""
