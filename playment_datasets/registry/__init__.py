"""Stage 3, the versioned registry: the :class:`~playment_datasets.registry.registry.Registry`
face over the index (``index``), raw objects (``store``), locks (``lock``), staging areas
(``staging``), the commit protocol (``commit``), sharded pulls (``shards``), upkeep
(``maintenance``) and registries on object storage (``remote``).

The modules below the face receive what they need (a ``RegistryDir``, paths, callables)
and never import ``registry.registry``. May import stages 0-2 and its own modules.
"""
