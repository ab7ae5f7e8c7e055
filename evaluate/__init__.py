"""Final classifiers, GZSL metrics, model selection, result records, tables and plots."""
