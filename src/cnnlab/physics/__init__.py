"""Quark/gluon jet images (issue 7; seeds/000 s.3): simulate, load, judge.

- :mod:`~cnnlab.physics.settings`  what a sample is (pT-hat and jet windows, R, pixels...);
- :mod:`~cnnlab.physics.generate`  Pythia 8 -> FastJet anti-kT -> matched, labelled jets;
- :mod:`~cnnlab.physics.images`    jet images (vectorised, phi wrap-around), channel sets;
- :mod:`~cnnlab.physics.features`  girth, multiplicity (classic discriminants);
- :mod:`~cnnlab.physics.store`     the HDF5 file (attributes, append, resume);
- :mod:`~cnnlab.physics.produce`   K worker processes, ordered block writes;
- :mod:`~cnnlab.physics.jetprep`   centre / rotate / flip / normalise;
- :mod:`~cnnlab.physics.config`    the check of ``data.jet_prep`` (registered into the data section);
- :mod:`~cnnlab.physics.dataset`   the ``jets`` and ``jets-aligned`` dataset sources;
- :mod:`~cnnlab.physics.metrics`   ROC, AUC, gluon rejection; CNN vs classic discriminants.

Generation needs the optional ``jets`` extra (pythia8mc, fastjet); everything else does not.
"""
