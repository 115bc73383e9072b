"""Optimizers of pretraining: SGD / AdamW parameter groups, solo-learn's LARS, the warm-up +
cosine learning rate and the scheduled weight decay (:mod:`resmo.optim.optimizers`)."""
