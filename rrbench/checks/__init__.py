"""Conformance checks that run a component against the mini task (``rrbench check``)."""
