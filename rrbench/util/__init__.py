"""Stage-free helpers every layer may use: strict file I/O and atomic writes, errors and exit codes, YAML, progress,
storage URLs and test-only kill points. Imports nothing else from rrbench."""
