"""helpers: the package behind *Transformers for medical image classification*.

Everything a chapter would otherwise copy from another chapter lives here: profiles and paths
(:mod:`helpers.config`), the run-info cell (:mod:`helpers.runinfo`), datasets (:mod:`helpers.data`),
models (:mod:`helpers.models`), training, metrics, explanations and the classifier app.
"""

__version__ = "0.1.0"

import warnings as _warnings

# fastai decorates a few layers with torch.jit.script when it is imported, and torch 2.x warns that
# TorchScript is deprecated: a warning about fastai's code that the reader can do nothing about, printed
# on every page that trains. Only that message is silenced.
_warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
