"""Training code: the cell (cell.py, the bottom of the house), datasets and protocols (one
record per entry), models, losses, their assembly, and the training loops.

Plain functions of a cell; nothing here imports ray, study/ or analysis/.
"""
