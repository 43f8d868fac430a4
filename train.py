"""python train.py lm|kws ... : the same as `seqapp train lm|kws ...`."""
import sys

from seqapp.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
