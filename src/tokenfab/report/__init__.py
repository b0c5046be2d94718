"""Report: tables, plots and HTML built from stored results only."""
