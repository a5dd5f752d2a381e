"""hepnn.preprocessing."""
