"""What a person sees: text tables, the run's live display, plots and export formats. Nothing here computes results."""
