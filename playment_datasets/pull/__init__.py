"""Stage 4, a pull: list a batch, fetch its results, normalize them and commit a version
(``orchestrate``), with a progress bar (``progress``).

May import every lower stage (foundation, ``api``, ``normalize``, ``dataset``,
``registry``); only the front end (``cli``, the package ``__init__``) imports it.
"""
