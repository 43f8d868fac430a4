"""seqapp: gated recurrent networks for character language modelling and keyword spotting."""

__version__ = "0.1.0"
