"""hepnn.explain."""
