import sys

from purge_engine.cli import main

sys.exit(main())
