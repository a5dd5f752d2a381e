"""The flavour-tagging example analysis of hepnn as an installable package.

``pip install analyses/flavour_tagging`` installs this folder as the package
``hepnn_flavour_tagging`` (``config.yaml`` as package data) with the entry point
``flavour_tagging`` in the ``hepnn.analyses`` group, so that
``hepnn run flavour_tagging`` finds it by name.
"""
