"""Pretraining with Lightning: the module, optimizers, monitors and the run folder."""
