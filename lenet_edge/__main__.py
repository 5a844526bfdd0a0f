import sys

from lenet_edge.cli import main

sys.exit(main())
