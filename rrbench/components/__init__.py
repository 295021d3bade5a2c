"""What a component is and how rrbench finds and calls it: hook specs, spec dataclasses, the plugin base classes, the
registry, guarded plugin calls and the checks on what plugins return. Imports only ``rrbench.util``."""
