"""The pipeline's steps as the CLI runs them, and the project around them (init, status, rounds)."""
