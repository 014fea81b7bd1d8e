"""twinbench, the application: the `twinbench` command line (train, compare, evaluate,
side-by-side, bench, ...) and the run helpers behind it. The library it drives lives
in common (spec, data, reference), frameworks (the registry of tf_impl and torch_impl),
reader, plots and bench."""
