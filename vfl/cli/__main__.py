import sys

from vfl.cli import main

sys.exit(main())
