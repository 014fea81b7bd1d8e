"""Every figure twinbench draws (matplotlib, Agg, PNG written atomically): learning curves
of fit histories, seed bands of an experiment. Imports only common."""
from plots.curves import plot_curves

__all__ = ["plot_curves"]
