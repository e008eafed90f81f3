"""`python -m gateway.cli`: how `shep serve --workers` starts its workers."""
import sys

from gateway.cli import main

sys.exit(main())
