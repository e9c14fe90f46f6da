"""adstudy's study layer: specs, grids, the results store and Ray submission.

Importing this package imports neither torch nor ray; submodules that need them say so.
"""

__version__ = "0.1.0"
