"""Media: privacy masks, H.264 bitstream helpers, the masking pipeline."""
