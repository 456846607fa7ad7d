"""Training stage: train, augment, evaluate (val choices, test record), model card."""
