"""Leaves every other module may use: errors, paths, atomic files, escaping, the console."""
