"""The training engine behind :func:`helpers.train.train`, one module per job.

* :mod:`~helpers.training.config`: :class:`~helpers.training.config.TrainConfig`, every setting;
* :mod:`~helpers.training.schedules`: how a learner is fitted, one function per schedule;
* :mod:`~helpers.training.setup`: data splits, network, loss, optimiser, the fastai ``Learner``;
* :mod:`~helpers.training.record`: evaluation, the run record and the checkpoint;
* :mod:`~helpers.training.loop`: :func:`~helpers.training.loop.train`, which strings them together.

Import from :mod:`helpers.train`; the named configurations are in :mod:`helpers.configs` and the
callbacks in :mod:`helpers.callbacks`.
"""
