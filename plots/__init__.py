"""Every figure twinbench draws (matplotlib, Agg, PNG written atomically): learning curves
of fit histories, seed bands of an experiment; plots.style holds what all figures share
(whole-epoch axes, legends outside the data, identical series kept visible), also for the
diff and bench figures. Imports only common."""
from plots.curves import plot_curves
from plots.experiment import plot_experiment

__all__ = ["plot_curves", "plot_experiment"]
