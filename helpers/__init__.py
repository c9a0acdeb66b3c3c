"""helpers: the package behind *Transformers for medical image classification*.

Everything a chapter would otherwise copy from another chapter lives here: profiles and paths
(:mod:`helpers.config`), the run-info cell (:mod:`helpers.runinfo`), datasets (:mod:`helpers.data`),
models (:mod:`helpers.models`), training, metrics, explanations and the classifier app.
"""

__version__ = "0.1.0"
