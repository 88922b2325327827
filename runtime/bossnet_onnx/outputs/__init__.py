"""What a run writes: the catalogue in every format (catalogue) and the plots (plotting)."""
