"""hepnn.training."""
