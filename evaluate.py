"""python evaluate.py lm|kws ... : the same as `seqapp evaluate lm|kws ...`."""
import sys

from seqapp.cli import main

sys.exit(main(["evaluate", *sys.argv[1:]]))
