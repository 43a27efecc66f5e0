"""The mirror: chain events projected into SQL, reorg-safe, rebuildable and verifiable."""
