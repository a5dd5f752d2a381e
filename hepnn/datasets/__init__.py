"""hepnn.datasets."""
