"""Deciding among the options: metrics, the strategy records, the comparison and its
recommendation, what changed in the data, and the decision map."""
