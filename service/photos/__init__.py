"""Photo (and short video) evidence of cases: upload, content-addressed storage, thumbnails,
EXIF metadata, the evidence check (after dispatch, near the case, not reused) and retention."""
