"""Data stage: reading BUSI (and BUS-BRA), near-duplicate groups, the leakage-free split, download."""
