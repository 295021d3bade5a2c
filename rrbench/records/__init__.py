"""The result record: its builder, the strict reader and field checks, the manifest of packages and hardware, and the
test-split ledger. Below the pipeline, which writes records, and the leaderboard, which verifies them."""
