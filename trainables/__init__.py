"""Training code: datasets, protocols, models, losses, optimizers and the trial loop.

Plain functions of a cell; nothing here imports ray.
"""
