"""Adapters to engines outside JAX (OpenMM, Tinker, PySCF, SciPy).

Installed as ``q2jax.adapters``. Importing this package is cheap: each
engine's own library is imported only when one of its adapter functions is
called, so ``import q2jax.adapters.openmm`` works (and raises a clear
:class:`q2jax.errors.EngineError` on use) when OpenMM is absent.
"""

__all__: list[str] = []
