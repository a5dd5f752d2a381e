"""hepnn.io."""
