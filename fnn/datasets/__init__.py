"""fnn.datasets: data sets that are more than arrays of examples (a lexicon with its own split
and vocabularies). The image classification sets stay in `fnn.data`."""
from . import cmudict as cmudict

__all__ = ["cmudict"]
