"""The citizen's pages (随手拍): anonymous reports through the Open311 intake with a photo,
tracking numbers, the status by number, and the public problem map with coarsened positions."""
