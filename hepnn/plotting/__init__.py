"""hepnn.plotting."""
