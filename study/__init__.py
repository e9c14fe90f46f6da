"""adstudy's study layer: specs, grids, plans, the runner, the recorder, the results store
and the CLI (submit.py: the one way through them).

Importing this package imports neither torch nor ray; study.runner and study.ray_trial
are the only modules that import ray.
"""

__version__ = "0.1.0"
