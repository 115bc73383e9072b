"""Pretraining on Lightning Fabric: the run from a recipe (pretrain.py), its loop (loop.py) and the loop's pieces."""
