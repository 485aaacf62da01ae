"""File imports: marketplace order exports and other files, streamed row by row."""
