"""The application: configuration files and the paper's presets, ``run``, ``demo`` and the
command line. The top layer: it may import every other part of the package; nothing imports
it."""
