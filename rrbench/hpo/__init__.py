"""Search over configurations: Tier A sweeps over cached scores, the experiment matrix (Tier B training studies,
Tier C finalists) and their reports and plots."""
