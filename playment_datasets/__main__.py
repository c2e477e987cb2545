"""``python -m playment_datasets`` runs the command line."""

from playment_datasets.cli import console

raise SystemExit(console())
