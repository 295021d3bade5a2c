"""One evaluation run, stage by stage: candidates, reranking through the score cache, combining scores, the decision
stage, and the runner that wires them and writes the record."""
