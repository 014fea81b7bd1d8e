"""twinbench benchmarks: the TF x PyTorch x variant x preset x device matrix, a compiled
floor (bench.floor), results on disk row by row, and the `twinbench bench` command.

See bench/README.md.
"""
