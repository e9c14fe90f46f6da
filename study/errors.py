"""Errors a user can act on. Each message names the field, the value and the choices."""


class SpecError(ValueError):
    """A study file or command-line value is wrong; raised before any work starts."""


class StoreError(RuntimeError):
    """The results store cannot be used as asked (not writable, holds another study, ...)."""
