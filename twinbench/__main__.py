import sys

from twinbench.cli import main

sys.exit(main())
